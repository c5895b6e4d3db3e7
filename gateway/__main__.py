# Cooperative sockets, locks and DNS before anything else is imported: this process runs on
# gevent workers (common.serve.WORKER_CLASSES), and a module that bound the unpatched versions
# first would block the whole worker.
from gevent import monkey

monkey.patch_all()

from common.cooperative import cheap_liveness_checks  # noqa: E402

cheap_liveness_checks()

from common.serve import main  # noqa: E402

main("gateway")

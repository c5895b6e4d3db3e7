from common.serve import main

main("proxy")

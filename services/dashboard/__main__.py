from common.serve import main

main("dashboard")

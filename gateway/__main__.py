from common.serve import main

main("gateway")

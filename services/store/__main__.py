from common.serve import main

main("store")

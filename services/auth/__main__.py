from common.serve import main

main("auth")

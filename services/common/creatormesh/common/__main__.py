from creatormesh.common.cli import main

main()

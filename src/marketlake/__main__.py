from marketlake.cli import main

main()

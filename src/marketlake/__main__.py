from marketlake.entry import main

main()

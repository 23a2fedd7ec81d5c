from exitcheck.cli import main

main()

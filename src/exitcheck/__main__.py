from exitcheck.launch import main

main()

from vcpd.daemon import main

main()

from vcpctl.cli import main

main()

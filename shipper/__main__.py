from shipper.cli import main

main()

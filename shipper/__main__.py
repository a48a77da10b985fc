from shipper.agent.cli import main

main()

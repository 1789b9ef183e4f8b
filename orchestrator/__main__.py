from orchestrator.apps.cli import main

main()

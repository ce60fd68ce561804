from bootsrv.cli import main

raise SystemExit(main())

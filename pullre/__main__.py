import sys

from pullre.cli.main import main

sys.exit(main())

import sys

from pullre.cli import main

sys.exit(main())

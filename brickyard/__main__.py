import sys

from brickyard.cli import main

sys.exit(main())

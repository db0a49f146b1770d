import sys

from squeezekit.cli.main import main

sys.exit(main())

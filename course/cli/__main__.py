"""`python -m course.cli`: the same as the `course` command."""

import sys

from course.cli.main import main

sys.exit(main())

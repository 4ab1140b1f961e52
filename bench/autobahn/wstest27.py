"""Start Autobahn|Testsuite's ``wstest`` (Python 2.7) from the scratch prefix.

    python2.7 wstest27.py PREFIX [wstest arguments...]
    python2.7 wstest27.py --check PREFIX

site.addsitedir (not PYTHONPATH) makes the prefix's .pth files run, so the ``zope``
namespace package resolves.
"""
import glob
import os
import site
import sys


def add_prefix(prefix):
    for directory in glob.glob(os.path.join(prefix, "lib", "python2.7", "site-packages")):
        site.addsitedir(directory)


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        add_prefix(sys.argv[2])
        import autobahntestsuite  # noqa: F401
        from autobahntestsuite import wstest  # noqa: F401
        sys.stdout.write("ok\n")
        sys.exit(0)
    add_prefix(sys.argv[1])
    sys.argv = ["wstest"] + sys.argv[2:]
    from autobahntestsuite.wstest import run
    run()

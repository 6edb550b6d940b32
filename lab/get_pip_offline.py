"""Offline stand-in for get-pip.py, used by ansible-test when it bootstraps pip in its venvs.

ansible-test runs: python get_pip_X_Y.py pip==X.Y [--no-setuptools] [--no-wheel]
Here pip comes from the interpreter's bundled wheel (ensurepip) and is then upgraded to the
requested version from the configured package index.
"""
import subprocess
import sys

ENSUREPIP_ONLY_FLAGS = {"--no-setuptools", "--no-wheel"}


def main(argv):
    # A separate process: ensurepip.bootstrap() in-process sets PIP_CONFIG_FILE=/dev/null.
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
    wanted = [arg for arg in argv if arg not in ENSUREPIP_ONLY_FLAGS]
    if wanted:
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *wanted])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

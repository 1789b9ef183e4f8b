"""The sandbox image definition (Dockerfile, packages.txt, setup.sh), shipped as package data."""

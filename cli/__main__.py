"""`python -m lrgan.cli ...` runs the `lrgan` command group."""

from .main import lrgan_entry

lrgan_entry()

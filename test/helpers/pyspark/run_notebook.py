"""Runs a notebook in a real ipykernel (nbclient) and prints each code cell's outputs as findings.
The kernel's pid goes first on stdout (`SPS-KERNEL <pid>`), for the test to end it if it must."""

import os
import sys

import nbformat
from common import emit
from nbclient import NotebookClient

path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": os.path.dirname(path)}})
with client.setup_kernel():
    sys.stdout.write("SPS-KERNEL %d\n" % client.km.provisioner.pid)
    sys.stdout.flush()
    for index, cell in enumerate(nb.cells):
        client.execute_cell(cell, index)
emit([{"source": c.source, "outputs": c.get("outputs", [])} for c in nb.cells if c.cell_type == "code"])

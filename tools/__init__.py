"""mmsakd's tools. One imports another as this package
(``from tools.analysis import plot_spots``), with the repository root on
``sys.path``: the tests have it there, and a tool run as a file that imports
another puts it there before its ``main()``. Shared code that is not a tool
lives in :mod:`mmsakd.utils`."""

"""Method plug-ins: one module per method in this folder, each registering itself with
`molebench.core.method.register_method`.

`molebench.core.method.get` discovers the modules by file name (heavy dependencies are imported inside the methods
that need them), and installed packages can add methods through the `molebench.methods` entry-point group.
"""

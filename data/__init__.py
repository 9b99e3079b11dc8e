"""The package data `molebench.resources`: task specs (tasks/) and the papers' published numbers and claims (paper/).
Downloads go to raw/, which is not shipped."""

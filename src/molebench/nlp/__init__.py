"""The NLP tables track (MoLE Tables 3-9, MixLoRA): plan (what to run, result paths), stages (model jobs), report
(tables, the gain check, figures)."""

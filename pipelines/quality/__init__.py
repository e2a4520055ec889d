"""How good the judgments are: `newswatch eval` over labelled records, `newswatch explain` for one text."""

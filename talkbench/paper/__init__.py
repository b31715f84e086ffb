"""``talkbench paper``: the CALS paper's evaluation section (Tables 1, 3, 4; Figs. 5, 6) from one YAML."""

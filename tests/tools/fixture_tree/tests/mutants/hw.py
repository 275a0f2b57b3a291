MUTANTS = {
    "hw/calc.py#1": {
        "wrong": [("adds two", "y = x + 2\n"), ("squares", "y = x * x\n")],
        "right": [("sum", "y = x + x\n"), ("with a comment", "# twice\ny = x * 2\n")],
    },
    "hw/calc.py#2": {
        "wrong": [("no upper bound", "c = max(value, low)\n")],
        "right": [
            (
                "if/else",
                "if value < low:\n    c = low\nelif value > high:\n    c = high\nelse:\n    c = value\n",
            )
        ],
    },
    "hw/geom/area.py#1": {"wrong": [("perimeter", "area = 2 * (width + height)\n")], "right": []},
    "hw/not_written_yet.py#1": {"wrong": [("never used", "x = 1\n")], "right": []},
}

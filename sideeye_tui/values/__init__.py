"""Variable capture: spec expressions compiled against the binary's DWARF into a plan
that a backend runs inside the pause (the eBPF probe or the ptrace reader), and the
decoder that turns the memory they copied into JSON values.

    expr.py     the expression language: `req.User.Name`, `*p`, `s[3]`
    plan.py     expressions + DWARF -> per-pc roots and a table of types to chase
    chase.py    the chase in Python (ptrace backend); bpf/value_probe.py mirrors it
    decode.py   copied memory + DWARF types -> JSON values, with cuts marked
"""

"""The mean of several submission.csv files, series by series and column by column: what `willis predict
--candidate-ensemble series` gives (to the last bit, RESULTS.md stops 44 and 45), here for members predicted
alone before, whatever their candidates. Every file must hold the same series. Willis itself never runs it.

    python tools/analysis/mean_submissions.py OUT.csv SUBMISSION.csv SUBMISSION.csv [...]
"""
import csv
import sys


def read(path):
    rows = list(csv.reader(open(path, newline="")))
    return rows[0], {row[0]: [float(x) for x in row[1:]] for row in rows[1:]}


def main(out, *paths):
    if len(paths) < 2:
        sys.exit("give the output and at least two submission files")
    header, first = read(paths[0])
    tables = [first]
    for path in paths[1:]:
        other_header, table = read(path)
        if other_header != header:
            sys.exit(f"{path}: its columns differ from {paths[0]}'s")
        if set(table) != set(first):
            sys.exit(f"{path}: {len(set(table) ^ set(first))} series are not in both it and {paths[0]}")
        tables.append(table)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for uid in sorted(first):
            writer.writerow([uid] + [repr(sum(t[uid][c] for t in tables) / len(tables)) for c in range(len(header) - 1)])


if __name__ == "__main__":
    main(*sys.argv[1:])

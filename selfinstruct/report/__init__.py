"""Reports on a run, read from its files.

    cost.py   `cost_report(run_dir)`: tokens and dollars from the ledger, and the 52K projection
    table.py  the report as a text table
    plot.py   the projection as a PNG bar chart (needs matplotlib)

`selfinstruct report`, one offline HTML page about a dataset (or two side by side), in the
order the data flows:

    source.py     what the page reads: records, and for a run its rejects, stats and ledger
    verbs.py      the root verb and object noun of an instruction, with no model download
    diversity.py  ROUGE-L to the nearest seed, first words, the duplicate groups removed
    timeline.py   the funnel, acceptance over time, dollars and tokens over time
    summary.py    all of that for one dataset, computed once
    sunburst.py   Alpaca's verb-noun chart;  charts.py  the other plotly figures
    samples.py    the searchable table;      page.py    the HTML page (`build_report`)
"""

"""Offline submissions (SPEC §13): prediction files validated, parsed and scored by the
scorer of live runs.

    submission.py     evaluate / read_answers: the entry points, by format
    text_formats.py   recoghub-tsv and ilsvrc
    matching.py       isc-matching
    descriptors.py    isc-descriptors (HDF5 or .npz), read and checked
    knn.py            the descriptor track's exact nearest-neighbour search (faiss)
    scoring.py        per-image results and scores (ServiceScorer's array path)
    answers.py        the phase's ids (Catalogue) and a file's answers (RankedAnswers)
    lines.py          bounded UTF-8 lines of a binary stream, a block at a time
    errors.py         SubmissionRejected: the line or array and what was expected
"""

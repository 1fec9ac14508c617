"""FER+ votes: both file forms, the bad files, the training target and the majority benchmark."""

import json

import numpy as np
import pytest

from fer_edge import data as fdata, votes
from fer_edge.cli import main
from fer_edge.edge.preprocessing import LABELS
from fer_edge.errors import FerEdgeError

from synth import VOTE_COLUMNS, make_tree, write_csv, write_fer2013new, write_tree_votes

N, H, S, SAD, A, D, F, C, U, NF = range(10)   # FER+'s column order


def _v(**counts) -> list[int]:
    row = [0] * 10
    for name, n in counts.items():
        row[{"neutral": N, "happy": H, "surprise": S, "sad": SAD, "anger": A, "disgust": D,
             "fear": F, "contempt": C, "unknown": U, "nf": NF}[name]] = n
    return row


# A hand-computed example of the majority protocol (votes of 1 dropped; the top class must hold
# more than half of what remains and be one of the 8 emotions).
HAND = np.array([
    _v(neutral=6, happy=2, surprise=1, anger=1),            # 6 of 8 -> neutral
    _v(neutral=4, happy=4, unknown=1, nf=1),                # 4 of 8: a tie, no majority
    _v(neutral=2, unknown=7, nf=1),                         # unknown majority: left out
    _v(neutral=1, disgust=2, contempt=7),                   # 7 of 9 -> contempt
    _v(neutral=3, happy=3, surprise=2, sad=2),              # 3 of 10: no majority
    _v(neutral=5, happy=1, surprise=1, sad=1, anger=1, disgust=1),  # 5 of 5 (the 1s dropped)
    _v(),                                                   # no votes (a face FER+ dropped)
    _v(fear=4, surprise=3, sad=2, neutral=1),               # 4 of 9: no majority
])


def test_majority_protocol_by_hand():
    truth = votes.majority(HAND)
    contempt = len(LABELS)
    assert truth.tolist() == [LABELS.index("neutral"), -1, -1, contempt, -1,
                              LABELS.index("neutral"), -1, -1]


def test_majority_summary_scores_contempt_as_an_error_and_agreement_over_voters():
    pred = ["neutral", "happy", "neutral", "disgust", "neutral", "happy", "angry", "fear"]
    scores = np.eye(len(LABELS))[[LABELS.index(p) for p in pred]]
    m = votes.majority_summary(HAND, scores)
    # kept: faces 0 (neutral, right), 3 (contempt, answered disgust: wrong), 5 (neutral, wrong)
    assert m["n"] == 3 and m["top1"] == pytest.approx(1 / 3)
    assert m["per_class_accuracy"]["neutral"] == 0.5
    assert m["per_class_accuracy"]["contempt"] == 0.0 and m["support"]["contempt"] == 1
    assert np.asarray(m["confusion_matrix"]).shape == (8, 7)
    # agreement: the share of each voted face's annotators who chose the answer (raw votes)
    shares = [6 / 10, 4 / 10, 2 / 10, 2 / 10, 3 / 10, 1 / 10, 4 / 10]
    assert m["n_with_votes"] == 7
    assert m["vote_agreement"] == pytest.approx(np.mean(shares))


def test_target_distribution_drops_single_votes_and_unusable_faces():
    dist, usable = votes.target_distribution(HAND)
    assert usable.tolist() == [True, True, False, False, True, True, False, True]
    row = dict(zip(LABELS, dist[0]))
    assert row["neutral"] == pytest.approx(6 / 8) and row["happy"] == pytest.approx(2 / 8)
    assert row["surprise"] == 0 and row["angry"] == 0           # single votes dropped
    np.testing.assert_allclose(dist[usable].sum(1), 1.0)


def test_training_targets_ferplus_and_mix():
    from fer_edge.training.pipeline import training_targets

    y = np.array([LABELS.index("sad")] * len(HAND))
    split = fdata.Split(np.zeros((len(HAND), 48, 48), np.uint8), y,
                        np.array([f"f{i}" for i in range(len(HAND))]), HAND.astype(np.int16))
    dist, usable = votes.target_distribution(HAND)
    kept, t = training_targets(split, {"target": "ferplus"})
    assert len(kept) == usable.sum() and kept.ids.tolist() == split.ids[usable].tolist()
    np.testing.assert_allclose(t, dist[usable])
    same, t = training_targets(split, {"target": "mix", "ferplus_weight": 0.2})
    assert len(same) == len(HAND)
    onehot = np.eye(len(LABELS))[y]
    np.testing.assert_allclose(t[0], 0.8 * onehot[0] + 0.2 * dist[0], rtol=1e-6)
    np.testing.assert_allclose(t[2], onehot[2])      # no usable votes: its label alone
    _, t = training_targets(split, {"target": "fer2013"})
    np.testing.assert_allclose(t, onehot)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    made = make_tree(tmp_path / "d", per_split={"train": 6, "val": 3, "test": 3})
    return tmp_path / "d", made


def _row(split, stem):
    return int(np.flatnonzero(split.ids == stem)[0])


def test_tree_votes_found_beside_the_data_and_attached_by_path(tree):
    root, made = tree
    written = write_tree_votes(root / "ferplus.csv", made)
    ds = fdata.load(root)
    assert ds.votes_path == str(root / "ferplus.csv")
    for name in made:
        sp = ds.split(name)
        usage = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}[name]
        for n in (0, len(sp) - 1):
            np.testing.assert_array_equal(sp.votes[_row(sp, f"{usage}_{n}")], written[name][n])
    # subsets (--limit) carry the votes of their own faces
    small = fdata.load(root, limit=5)
    sp = small.split("train")
    for k, stem in enumerate(sp.ids):
        np.testing.assert_array_equal(sp.votes[k], ds.split("train").votes[
            _row(ds.split("train"), stem)])


def test_csv_votes_beside_fer2013_csv_are_row_aligned(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    made = make_tree(tmp_path / "d", per_split={"train": 5, "val": 2, "test": 2})
    write_csv(tmp_path / "fer2013.csv", made)
    written = write_fer2013new(tmp_path / "fer2013new.csv", made)
    ds = fdata.load(tmp_path / "fer2013.csv")
    for name in made:
        np.testing.assert_array_equal(ds.split(name).votes, written[name])
    # and the same votes per face as the tree form
    write_tree_votes(tmp_path / "d" / "ferplus.csv", made)
    tree = fdata.load(tmp_path / "d")
    for name in made:
        a, b = ds.split(name), tree.split(name)
        order_a = np.lexsort((a.x.reshape(len(a), -1).sum(1), a.y))
        order_b = np.lexsort((b.x.reshape(len(b), -1).sum(1), b.y))
        np.testing.assert_array_equal(a.votes[order_a], b.votes[order_b])


def _rewrite(path, line: int, edit):
    lines = path.read_text().splitlines()
    lines[line - 1] = edit(lines[line - 1])
    path.write_text("\n".join(lines) + "\n")


def _bad_info(capsys, data, *more) -> str:
    rc = main(["data", "info", "--data", str(data), *map(str, more)])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_bad_votes_end_in_one_line_naming_the_file_and_row(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    made = make_tree(tmp_path / "d", per_split={"train": 3, "val": 2, "test": 2})
    write_csv(tmp_path / "fer2013.csv", made)
    new = tmp_path / "fer2013new.csv"
    write_fer2013new(new, made)
    rows = new.read_text().splitlines()
    # wrong row count: the last row missing
    new.write_text("\n".join(rows[:-1]) + "\n")
    err = _bad_info(capsys, tmp_path / "fer2013.csv")
    assert f"{new}:{len(rows)}: {len(rows) - 2} vote rows for {len(rows) - 1} data rows" in err
    # a row missing in the middle: the first row whose Usage no longer follows fer2013.csv
    new.write_text("\n".join(rows[:3] + rows[4:]) + "\n")
    err = _bad_info(capsys, tmp_path / "fer2013.csv")
    assert f"{new}:22: Usage 'PublicTest' where fer2013.csv's row says 'Training'" in err

    tree_votes = tmp_path / "d" / "ferplus.csv"
    write_tree_votes(tree_votes, made)
    _rewrite(tree_votes, 5, lambda s: s.replace("Training_", "Trianing_", 1))
    err = _bad_info(capsys, tmp_path / "d")
    assert f"{tree_votes}:5:" in err and "is not an image of the data" in err

    write_tree_votes(tree_votes, made)
    _rewrite(tree_votes, 3, lambda s: s.rsplit(",", 1)[0] + ",three")
    err = _bad_info(capsys, tmp_path / "d")
    assert f"{tree_votes}:3: vote 'three' is not a whole number" in err

    # a votes file given with --votes that is not one
    other = tmp_path / "other.csv"
    other.write_text("path,label\na,b\n")
    err = _bad_info(capsys, tmp_path / "d", "--votes", other)
    assert f"{other}:1: not a FER+ votes file" in err


def test_bad_votes_write_no_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    made = make_tree(tmp_path / "d", per_split={"train": 3, "val": 2, "test": 2})
    tree_votes = tmp_path / "d" / "ferplus.csv"
    write_tree_votes(tree_votes, made)
    _rewrite(tree_votes, 2, lambda s: ",".join(s.split(",")[:1] + ["-3"] + s.split(",")[2:]))
    rc = main(["train", "--data", str(tmp_path / "d"), "--arch", "tiny", "--epochs", "1",
               "--target", "ferplus", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and f"{tree_votes}:2: votes must be counts" in err
    assert not (tmp_path / "run").exists()


def test_ferplus_target_needs_votes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FER_EDGE_CACHE", str(tmp_path / "cache"))
    make_tree(tmp_path / "d", per_split={"train": 3, "val": 2, "test": 2})
    rc = main(["train", "--data", str(tmp_path / "d"), "--arch", "tiny", "--epochs", "1",
               "--target", "ferplus", "--out", str(tmp_path / "run")])
    assert rc == 2 and "--target ferplus needs FER+ votes: none beside" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    rc = main(["train", "--data", str(tmp_path / "d"), "--arch", "tiny", "--epochs", "1",
               "--ferplus-weight", "0.3", "--out", str(tmp_path / "run")])
    assert rc == 2 and "--target mix" in capsys.readouterr().err


def test_data_info_shows_vote_counts(tree, capsys):
    root, made = tree
    write_tree_votes(root / "ferplus.csv", made)
    assert main(["data", "info", "--data", str(root), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    fp = info["ferplus"]
    assert fp["votes"] == str(root / "ferplus.csv")
    ds = fdata.load(root)
    for name in made:
        expected = votes.counts(ds.split(name).votes)
        assert fp[name] == expected
        assert fp[name]["with_votes"] == len(ds.split(name))
    assert main(["data", "info", "--data", str(root)]) == 0
    text = capsys.readouterr().out
    assert "FER+ votes" in text and "contempt" in text


def test_train_on_votes_selects_on_the_ferplus_majority(tree, capsys):
    from fer_edge.training.engine import train

    root, made = tree
    write_tree_votes(root / "ferplus.csv", made)
    m = train(data=str(root), arch="tiny", out=str(root.parent / "run"), epochs=2,
              target="mix", ferplus_weight=0.5, verbose=0)
    cfg = json.loads((root.parent / "run" / "config.json").read_text())
    assert cfg["options"]["target"] == "mix" and cfg["options"]["ferplus_weight"] == 0.5
    assert cfg["options"]["votes"] == str(root / "ferplus.csv")
    assert cfg["options"]["votes_sha256"] == votes_sha(root / "ferplus.csv")
    assert m["selected_on"] == "ferplus" and "ferplus" in m["splits"]["val"]
    history = (root.parent / "run" / "history.csv").read_text().splitlines()
    assert "val_ferplus_accuracy" in history[0].split(",")
    state = json.loads((root.parent / "run" / "state.json").read_text())
    column = history[0].split(",").index("val_ferplus_accuracy")
    best = max(float(row.split(",")[column]) for row in history[1:])
    assert state["best_val_accuracy"] == pytest.approx(best)
    # --resume continues on the same target, votes and selection
    m = train(out=str(root.parent / "run"), resume=True, epochs=3, verbose=0)
    history = (root.parent / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 4 and m["selected_on"] == "ferplus"
    assert json.loads((root.parent / "run" / "config.json").read_text())["options"]["target"] \
        == "mix"


def votes_sha(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_vote_columns_are_ferplus_order():
    assert votes.COLUMNS == VOTE_COLUMNS


def test_evaluate_adds_the_ferplus_benchmark_per_model(tree, tiny_tflite, tmp_path):
    from fer_edge.evaluate import evaluate, markdown
    from fer_edge.edge.runtime import EmotionModel

    root, made = tree
    write_tree_votes(root / "ferplus.csv", made)
    result = evaluate([tiny_tflite], data=str(root), split="test", latency_runs=2,
                      out=tmp_path / "eval")
    assert result["votes"] == str(root / "ferplus.csv")
    row = result["variants"][0]["ferplus"]
    sp = fdata.load(root).split("test")
    model = EmotionModel(tiny_tflite)
    scores = model.canonical_scores(model.predict(sp.x))
    assert row == votes.majority_summary(sp.votes, scores)
    text = markdown(result)
    assert "## FER+ majority benchmark" in text and f"{row['top1']:.2%}" in text
    saved = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert saved["variants"][0]["ferplus"]["n"] == row["n"]
    # without votes beside the data, no FER+ rows
    (root / "ferplus.csv").unlink()
    plain = evaluate([tiny_tflite], data=str(root), split="test", latency_runs=2)
    assert "ferplus" not in plain["variants"][0] and plain["votes"] is None
    assert "FER+" not in markdown(plain)


def test_outside_faces_scores_posed_sets_over_their_own_classes():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from outside_faces import SETS, score_set

    y = np.array([LABELS.index(lab) for lab in ("happy", "sad", "fear", "neutral")])
    scores = np.zeros((4, len(LABELS)))
    scores[0, LABELS.index("happy")] = 1
    scores[1, LABELS.index("neutral")] = 0.9        # neutral is out of CK+'s argmax: sad wins
    scores[1, LABELS.index("sad")] = 0.1
    scores[2, LABELS.index("surprise")] = 1
    scores[3, LABELS.index("neutral")] = 1          # a neutral face is not scored on CK+
    m = score_set(scores, y, SETS["ckplus"])
    assert m["n"] == 3 and m["accuracy"] == round(2 / 3, 4)
    assert m["per_class_recall"] == {"fear": 0.0, "happy": 1.0, "sad": 1.0}
    m = score_set(scores, y, SETS["jaffe"])          # all 7 classes, argmax over all
    assert m["n"] == 4 and m["accuracy"] == pytest.approx(2 / 4)


def test_the_selection_rule_ranks_by_the_mean_of_val_and_the_outside_sets():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from select_models import rank

    val = {"variants": [
        {"model": "a", "top1": 0.66, "ferplus": {"top1": 0.70}},
        {"model": "b", "top1": 0.60, "ferplus": {"top1": 0.85}},
        {"model": "a", "tta": True, "top1": 0.99, "ferplus": {"top1": 0.99}},
        {"model": "c", "top1": 0.65, "ferplus": {"top1": 0.72}}]}
    outside = {"results": {m: {"ckplus": {"score": ck}, "muxspace": {"score": mx}}
                           for m, ck, mx in (("a", 0.71, 0.57), ("b", 0.73, 0.69),
                                             ("c", 0.74, 0.60))}}
    rows = rank(val, outside, "ferplus")
    assert [r["model"] for r in rows] == ["b", "c", "a"]
    assert rows[0]["mean"] == round((0.85 + 0.73 + 0.69) / 3, 4)
    rows = rank(val, outside, "fer2013", only=["a", "c"])
    assert [r["model"] for r in rows] == ["c", "a"]
    assert rows[1]["mean"] == round((0.66 + 0.71 + 0.57) / 3, 4)

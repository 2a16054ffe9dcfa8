"""Label tables (imgclf.data.tables) as real data comes: Kaggle cassava's layout (numbers as labels, a names map,
train_images/ beside train.csv) and a dermoscopy metadata.csv (an unnamed index column, ids without the extension,
labels 0.0 / 1.0, a patient column, rows naming no image, images no row names, a file named twice with different
labels), through the CLI as a user types it and through the API (a path or a DataFrame)."""

import csv
import json

import pytest
from helpers import run_cli, square_image

from imgclf.data.folders import load_folder
from imgclf.data.tables import TableColumns, load_table, normalise_label


def _cassava(root, n=30):
    """train.csv (image_id with .jpg, label 0/1), train_images/, label_num_to_disease_map.json; one row names no
    image."""
    (root / "train_images").mkdir(parents=True)
    rows = []
    for i in range(n):
        square_image("br" if i % 2 else "tl", 40, i).save(root / "train_images" / f"{1000 + i}.jpg")
        rows.append(f"{1000 + i}.jpg,{i % 2}")
    (root / "train.csv").write_text("image_id,label\n" + "\n".join(rows) + "\n9999.jpg,1\n")
    (root / "label_num_to_disease_map.json").write_text(json.dumps({"0": "Top left", "1": "Bottom right"}))
    return root / "train.csv"


def _dermoscopy(root, patients=12, per_patient=4):
    """metadata.csv beside the images: ,isic_id,patient_id,target — ids without extension, target 0.0/1.0 (one
    label a patient); plus a row naming no image, an image no row names, and one image named twice (0.0, 1.0)."""
    root.mkdir(parents=True)
    lines = [",isic_id,patient_id,target"]
    k = 0
    for p in range(patients):
        for j in range(per_patient):
            square_image("br" if p % 2 else "tl", 40, 100 * p + j).save(root / f"ISIC_{k:04d}.png")
            lines.append(f"{k},ISIC_{k:04d},P{p:02d},{float(p % 2)}")
            k += 1
    lines.append(f"{k},ISIC_9999,P99,1.0")  # no such image
    square_image("tl", 40, 7).save(root / "ISIC_8888.png")  # no row names it
    lines.append(f"{k + 1},ISIC_0000,P00,1.0")  # ISIC_0000 again, with another label
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")
    return root / "metadata.csv"


def test_labels_are_normalised():
    assert [normalise_label(v) for v in ("1.0", " 2 ", "0.00", "cat", "1.5", "")] == ["1", "2", "0", "cat", "1.5", ""]


def test_cassava_through_the_cli_names_classes_and_records_its_split(tmp_path, monkeypatch, capsys):
    table = _cassava(tmp_path / "cassava")
    runs = tmp_path / "runs"
    code, out, err = run_cli(monkeypatch, capsys, "train", table, "--class-names",
                             table.parent / "label_num_to_disease_map.json", "--model", "course_small",
                             "--target-size", 32, 32, "--epochs", 1, "--batch-size", 8, "--runs-dir", runs,
                             "--name", "c", "--no-calibrate")  # fmt: skip
    said = " ".join(err.split())
    assert code == 0, err[-2000:]
    assert "file column 'image_id', label column 'label'" in said and "left out: 1 no image" in said
    run = runs / "c"
    assert json.loads((run / "classes.json").read_text()) == ["Top left", "Bottom right"]  # the table's 0, 1
    split = list(csv.DictReader((run / "split.csv").open()))
    assert len(split) == 30 and {r["split"] for r in split} == {"train", "validation"}
    assert {r["label"] for r in split if r["path"].endswith("1001.jpg")} == {"Bottom right"}
    problems = list(csv.DictReader((run / "data_problems.csv").open()))
    assert problems == [{"kind": "no_image", "row": "31", "value": "9999.jpg", "detail": problems[0]["detail"]}]
    import yaml

    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["data"]["layout"] == "table" and recorded["data"]["table"]["x_col"] == "image_id"
    assert len(recorded["data"]["table"]["sha256"]) == 64 and recorded["class_names"].endswith(".json")


def test_a_dermoscopy_table_keeps_patients_whole_and_says_what_it_left_out(tmp_path):
    table = _dermoscopy(tmp_path / "derm")
    dataset, source = load_table(table, TableColumns(group_col="patient_id"), validation_split=0.25, seed=0)
    assert (source.x_col, source.y_col, source.split) == ("isic_id", "target", "groups")  # found, index dropped
    assert dataset.class_names == ("0", "1")  # 0.0 / 1.0 as labels
    kinds = sorted(p.kind for p in source.problems)
    assert kinds == ["conflicting_labels", "no_image", "no_row"], source.problems
    assert len(dataset.train) + len(dataset.validation) == 47  # 48 pictures, the conflicted one left out
    train_groups = {source.groups[p] for p in dataset.train.paths}
    val_groups = {source.groups[p] for p in dataset.validation.paths}
    assert train_groups and val_groups and not train_groups & val_groups  # no patient on both sides
    assert set(dataset.validation.labels.tolist()) == {0, 1}  # stratified as far as the groups allow
    again, _ = load_table(table, TableColumns(group_col="patient_id"), validation_split=0.25, seed=0)
    assert again.validation.paths == dataset.validation.paths  # seeded


def test_a_split_column_of_booleans_or_names_is_the_split(tmp_path):
    table = _cassava(tmp_path / "c")
    lines = table.read_text().splitlines()
    header, rows = lines[0], lines[1:-1]
    for values in (("False", "True"), ("train", "valid")):
        with_split = [f"{r},{values[1] if k % 5 == 0 else values[0]}" for k, r in enumerate(rows)]
        (table.parent / "split.csv").write_text(f"{header},is_valid\n" + "\n".join(with_split) + "\n")
        dataset = load_folder(table.parent / "split.csv", table=TableColumns(split_col="is_valid", y_col="label"))
        assert len(dataset.validation) == 6 and len(dataset.train) == 24 and dataset.source.split == "column"


def test_a_dataframe_and_the_errors_a_user_meets(tmp_path, monkeypatch, capsys):
    pd = pytest.importorskip("pandas")
    table = _cassava(tmp_path / "c")
    frame = pd.read_csv(table)
    dataset = load_folder(frame, table=TableColumns(images=str(table.parent / "train_images")))
    assert dataset.layout == "table" and len(dataset.train) + len(dataset.validation) == 30
    with pytest.raises(Exception, match="give images=FOLDER"):
        load_folder(frame)
    code, _, err = run_cli(monkeypatch, capsys, "train", table, "--y-col", "diagnosis", "--epochs", 1)
    assert code == 2 and "y_col 'diagnosis' is not a column" in err and "['image_id', 'label']" in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "nothing.csv").write_text("a,b\nx,1\ny,2\n")
    code, _, err = run_cli(monkeypatch, capsys, "train", tmp_path / "nothing.csv", "--epochs", 1)
    assert code == 2 and "no column" in err and "names an image" in err


def test_the_estimator_takes_a_table_and_a_dataframe_with_the_same_options(tmp_path):
    pd = pytest.importorskip("pandas")
    from imgclf import ImageClassifier

    table = _dermoscopy(tmp_path / "derm")
    settings = dict(model="course_small", target_size=(32, 32), epochs=1, batch_size=8, group_col="patient_id",
                    validation_split=0.25, calibrate=False)  # fmt: skip
    ImageClassifier(**settings).fit(table, run_dir=tmp_path / "run", verbose=0)
    rows = list(csv.DictReader((tmp_path / "run" / "split.csv").open()))
    sides = {}
    for r in rows:
        sides.setdefault(r["group"], set()).add(r["split"])
    assert len(sides) == 12 and all(len(s) == 1 for s in sides.values())  # every patient on one side
    assert (tmp_path / "run" / "data_problems.csv").is_file()
    frame = pd.read_csv(table)
    clf = ImageClassifier(**{**settings, "images": str(table.parent)}).fit(frame, verbose=0)
    assert list(clf.classes_) == ["0", "1"]


def test_resume_refuses_a_table_that_changed(tmp_path, monkeypatch, capsys):
    from helpers import Crash, crash_after

    from imgclf import ImageClassifier

    table = _cassava(tmp_path / "c")
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=3, batch_size=8, calibrate=False)
    with pytest.raises(Crash):
        clf.fit(table, run_dir=tmp_path / "run", verbose=0, callbacks=[crash_after(1)])
    table.write_text(table.read_text().replace("1001.jpg,1", "1001.jpg,0"))  # a label changed
    code, _, err = run_cli(monkeypatch, capsys, "train", "--resume", tmp_path / "run")
    assert code == 2 and "changed since run" in err and "SHA-256" in err


def test_group_by_keeps_bursts_of_phone_shots_in_one_split(tmp_path, monkeypatch, capsys):
    data = tmp_path / "shots"
    for c, corner in (("a_tl", "tl"), ("b_br", "br")):
        (data / c).mkdir(parents=True)
        for burst in range(6):
            for shot in range(3):
                square_image(corner, 40, 100 * burst + shot).save(data / c / f"IMG_{c}{burst}_burst{shot:02d}.png")
    dataset = load_folder(data, validation_split=0.25, group_by=r"(.*)_burst\d+")
    train = {dataset.groups[p] for p in dataset.train.paths}
    held = {dataset.groups[p] for p in dataset.validation.paths}
    assert len(train | held) == 12 and not train & held  # a burst is never on both sides
    runs = tmp_path / "runs"
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--group-by", r"(.*)_burst\d+", "--model",
                           "course_small", "--target-size", 32, 32, "--epochs", 1, "--batch-size", 8,
                           "--runs-dir", runs, "--name", "g", "--no-calibrate")  # fmt: skip
    assert code == 0, err[-2000:]
    rows = list(csv.DictReader((runs / "g" / "split.csv").open()))
    sides = {}
    for r in rows:
        sides.setdefault(r["group"], set()).add(r["split"])
    assert len(rows) == 36 and len(sides) == 12 and all(len(s) == 1 for s in sides.values())


def test_doctor_checks_a_table_and_finds_a_group_across_the_split(tmp_path, monkeypatch, capsys):
    table = _dermoscopy(tmp_path / "derm")
    lines = table.read_text().splitlines()
    with_split = [lines[0] + ",split"] + [line + (",valid" if k % 4 == 0 else ",train")
                                          for k, line in enumerate(lines[1:])]  # fmt: skip
    (table.parent / "split.csv").write_text("\n".join(with_split) + "\n")  # a patient's pictures on both sides
    code, out, _ = run_cli(monkeypatch, capsys, "doctor", table.parent / "split.csv", "--split-col", "split",
                           "--group-col", "patient_id", "--json", "--quick")  # fmt: skip
    report = json.loads(out)
    assert code == 0 and report["problems"]["group_leak"] and len(report["problems"]["no_image"]) == 1
    assert set(report["problems"]) >= {"group_leak", "no_image", "no_row", "conflicting_labels"}
    assert {f["split"] for f in report["files"]} == {"train", "validation"}
    code, out, _ = run_cli(monkeypatch, capsys, "doctor", table, "--quick")  # the table alone: no split, no leak
    assert code == 0 and "group_leak" not in out and "no_image" in out


def test_doctor_group_by_finds_a_burst_in_training_and_validation(tmp_path, monkeypatch, capsys):
    for split, shots in (("train", (0, 1)), ("validation", (2,))):
        for c, corner in (("a_tl", "tl"), ("b_br", "br")):
            (tmp_path / "d" / split / c).mkdir(parents=True, exist_ok=True)
            for shot in shots:
                square_image(corner, 40, 10 * shot).save(tmp_path / "d" / split / c / f"{c}_x_burst{shot}.png")
            square_image(corner, 40, 99).save(tmp_path / "d" / split / c / f"{c}_{split}_only_burst0.png")
    code, out, _ = run_cli(monkeypatch, capsys, "doctor", tmp_path / "d", "--group-by", r"(.*)_burst\d+", "--json",
                           "--quick")  # fmt: skip
    leaks = sorted(json.loads(out)["problems"]["group_leak"])
    assert code == 0 and len(leaks) == 6 and all("_x_burst" in p for p in leaks)  # not the one-split bursts


def test_evaluate_reads_a_table_as_its_run_was_trained_on_it(tmp_path, monkeypatch, capsys):
    table = _cassava(tmp_path / "c")
    names = table.parent / "label_num_to_disease_map.json"
    runs = tmp_path / "runs"
    code, _, err = run_cli(monkeypatch, capsys, "train", table, "--class-names", names, "--model", "course_small",
                           "--target-size", 32, 32, "--epochs", 2, "--batch-size", 8, "--runs-dir", runs,
                           "--name", "c", "--no-calibrate")  # fmt: skip
    assert code == 0, err[-2000:]
    code, out, err = run_cli(monkeypatch, capsys, "evaluate", runs / "c", table, "--json")
    metrics = json.loads(out)
    assert code == 0 and metrics["n"] == 30, err[-2000:]  # every usable row, labels named as in training
    (tmp_path / "other.json").write_text(json.dumps({"0": "Left", "1": "Right"}))
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", runs / "c", table, "--class-names", tmp_path / "other.json")
    assert code == 2 and "has label 'Left', which is not one of the model's classes" in " ".join(err.split())


def test_imgclf_table_both_ways(tmp_path, monkeypatch, capsys):
    from helpers import write_split_folder

    data = write_split_folder(tmp_path / "d", {"a_tl": 6, "b_br": 6}, {"a_tl": 2, "b_br": 2})
    code, out, _ = run_cli(monkeypatch, capsys, "table", data)
    rows = list(csv.DictReader(out.splitlines()))
    assert code == 0 and len(rows) == 16 and rows[0] == {"path": "train/a_tl/000.png", "label": "a_tl",
                                                         "split": "train", "group": ""}  # fmt: skip
    code, _, err = run_cli(monkeypatch, capsys, "table", data, "--out", data / "labels.csv")
    assert code == 0 and "16 rows written" in err
    code, _, err = run_cli(monkeypatch, capsys, "table", data, "--out", data / "labels.csv")
    assert code == 2 and "never written over" in err
    # the table back to class folders, by hard links: the same pictures, the same split, nothing moved
    code, out, err = run_cli(monkeypatch, capsys, "table", data / "labels.csv", "--split-col", "split",
                             "--to-folders", tmp_path / "back", "--mode", "link")  # fmt: skip
    assert code == 0, err
    back = sorted(p.relative_to(tmp_path / "back").as_posix() for p in (tmp_path / "back").rglob("*.png"))
    assert back == sorted(r["path"] for r in rows)
    linked = (tmp_path / "back" / "train" / "a_tl" / "000.png").stat().st_ino
    assert linked == (data / "train" / "a_tl" / "000.png").stat().st_ino
    assert (data / "train" / "a_tl" / "000.png").is_file()

"""Each backend behind a live recognizer: command, python and demo."""

import io
import os
import random
import shlex
import sys
from pathlib import Path

import pytest
from PIL import Image

from gateway.protocol.result_string import Tag, parse_result
from sample_recognizer.app import ConfigError, RecognizerConfig, create_recognizer_app
from sample_recognizer.backends.demo import PALETTE, make_demo_image, recognize_demo
from tests.builders import jpeg_bytes, png_bytes
from tests.recognizer.serving import recognizer

# --- command ---------------------------------------------------------------------------


def script(tmp_path: Path, source: str) -> str:
    """A command line running `source` with this Python; the image path is appended."""
    path = tmp_path / "model.py"
    path.write_text(source)
    return shlex.join([sys.executable, str(path)])


SIZE_AND_SUFFIX = """
import sys
from pathlib import Path
image = Path(sys.argv[1])
print(f"{image.suffix[1:]}:0.5;bytes-{len(image.read_bytes())}:0.75")
"""


def test_command_gets_the_image_file_and_its_stdout_is_the_answer(tmp_path: Path) -> None:
    image = png_bytes()
    with recognizer(backend="command", command=script(tmp_path, SIZE_AND_SUFFIX)) as client:
        r = client.post("/recognize", content=image)
    assert r.status_code == 200
    assert parse_result(r.content) == [Tag(f"bytes-{len(image)}", 0.75), Tag("png", 0.5)]


def test_command_places_the_image_where_image_placeholder_says(tmp_path: Path) -> None:
    (tmp_path / "model.py").write_text(
        "import sys\nprint(f'{sys.argv[1]}:1;' + sys.argv[2].rsplit('.', 1)[1] + ':0.5')\n"
    )
    command = f"{shlex.quote(sys.executable)} {tmp_path / 'model.py'} --top {{image}}"
    with recognizer(backend="command", command=command) as client:
        r = client.post("/recognize", content=jpeg_bytes())
    assert r.status_code == 200
    assert parse_result(r.content) == [Tag("--top", 1.0), Tag("jpg", 0.5)]


def test_command_failure_answers_500_with_the_last_stderr_line(tmp_path: Path) -> None:
    source = "import sys\nprint('loading', file=sys.stderr)\nsys.exit('model.bin not found')\n"
    with recognizer(backend="command", command=script(tmp_path, source)) as client:
        r = client.post("/recognize", content=png_bytes())
    assert r.status_code == 500
    assert r.text == "command exited with status 1: model.bin not found"


def test_command_timeout_answers_500_and_kills_the_program(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    source = (
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    config = {"command": script(tmp_path, source), "command_timeout_s": 0.3}
    with recognizer(backend="command", **config) as client:
        r = client.post("/recognize", content=png_bytes())
    assert r.status_code == 500
    assert r.text == "command timed out after 0.3s"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_command_output_that_breaks_the_grammar_answers_500_with_the_parser_message(
    tmp_path: Path,
) -> None:
    source = "print('cat:0.9;bird:0.2;dog')\n"
    with recognizer(backend="command", command=script(tmp_path, source)) as client:
        r = client.post("/recognize", content=png_bytes())
    assert r.status_code == 500
    assert 'entry 3 "dog" has no ":score"' in r.text


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        (None, "needs --command"),
        ("", "needs --command"),
        ("no-such-program-x {image}", "not found"),
    ],
)
def test_command_backend_setup_errors(command: str | None, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        create_recognizer_app(RecognizerConfig(backend="command", command=command))


# --- python ----------------------------------------------------------------------------

MODELS = "tests.recognizer.team_models"


def test_python_function_pairs_are_formatted_and_ranked() -> None:
    image = png_bytes()
    with recognizer(backend="python", function=f"{MODELS}:ranked_pairs") as client:
        r = client.post("/recognize", content=image)
    assert r.status_code == 200
    assert parse_result(r.content) == [Tag(f"bytes-{len(image)}", 0.75), Tag("small", 0.25)]


@pytest.mark.parametrize(
    ("function", "answer"),
    [("result_string", "husky:0.8;malamute:0.15"), ("async_model", "async:1.0")],
)
def test_python_function_may_return_a_string_or_be_async(function: str, answer: str) -> None:
    with recognizer(backend="python", function=f"{MODELS}:{function}") as client:
        r = client.post("/recognize", content=png_bytes())
    assert (r.status_code, r.text) == (200, answer)


@pytest.mark.parametrize(
    ("function", "answer"),
    [
        (
            "numpy_scores",
            [
                Tag("husky", 0.8100000023841858),
                Tag("malamute", 0.11999999731779099),
                Tag("wolf", 0.07000000029802322),
            ],
        ),
        ("numpy_class_indices", [Tag("3", 0.97), Tag("11", 0.25), Tag("7", 0.0)]),
        ("float_like_scores", [Tag("sled", 0.5), Tag("café", 0.25)]),
    ],
)
def test_python_function_may_return_numpy_values_and_any_real_numbers(
    function: str, answer: list[Tag]
) -> None:
    with recognizer(backend="python", function=f"{MODELS}:{function}") as client:
        r = client.post("/recognize", content=png_bytes())
    assert r.status_code == 200, r.text
    assert parse_result(r.content) == answer


@pytest.mark.parametrize(
    ("function", "detail"),
    [
        ("no_score", 'entry 3 "dog" has no ":score"'),
        ("text_score", "score '0.9' of tag 'cat' is not a number"),
        ("not_a_result", "returned 42, not a result string or (tag, score) pairs"),
        ("crashes", "crashes raised RuntimeError: CUDA out of memory"),
    ],
)
def test_python_function_failures_answer_500_with_what_went_wrong(
    function: str, detail: str
) -> None:
    with recognizer(backend="python", function=f"{MODELS}:{function}") as client:
        r = client.post("/recognize", content=png_bytes())
    assert r.status_code == 500
    assert detail in r.text


@pytest.mark.parametrize(
    ("function", "problem"),
    [
        (None, "needs --function"),
        ("team_models", "should be module:function"),
        ("no_such_module_x:f", "cannot import 'no_such_module_x'"),
        (f"{MODELS}:missing", "has no 'missing'"),
        (f"{MODELS}:NOT_CALLABLE", "is not callable"),
    ],
)
def test_python_backend_setup_errors(function: str | None, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        create_recognizer_app(RecognizerConfig(backend="python", function=function))


# --- demo ------------------------------------------------------------------------------


def test_demo_recognizer_agrees_with_the_generator_on_most_images() -> None:
    rng = random.Random(2016)
    right = dict.fromkeys(PALETTE, 0)
    with recognizer(backend="demo") as client:
        for label in PALETTE:
            for number in range(50):
                # Both formats: the organizer's demo stores the images as JPEG.
                image = make_demo_image(label, rng, image_format=("PNG", "JPEG")[number % 2])
                r = client.post("/recognize", content=image)
                assert r.status_code == 200, r.text
                right[label] += parse_result(r.content)[0].tag == label
    assert all(count >= 45 for count in right.values()), right


def test_demo_answer_ranks_every_palette_colour_with_scores_in_0_1() -> None:
    tags = recognize_demo(make_demo_image("cyan", random.Random(1)))
    assert sorted(t.tag for t in tags) == sorted(PALETTE)
    assert all(0 < t.score <= 1 for t in tags)
    assert [t.score for t in tags] == sorted((t.score for t in tags), reverse=True)


def test_demo_recognizes_a_plain_palette_colour_with_a_top_score() -> None:
    tags = recognize_demo(png_bytes(color=PALETTE["purple"]))
    assert tags[0] == Tag("purple", 1.0)


def test_demo_images_are_not_one_flat_colour_and_follow_the_seed() -> None:
    first = make_demo_image("red", random.Random(5), size=(40, 30))
    assert first == make_demo_image("red", random.Random(5), size=(40, 30))
    assert first != make_demo_image("red", random.Random(6), size=(40, 30))
    with Image.open(io.BytesIO(first)) as image:
        assert image.size == (40, 30)
        assert len(image.convert("RGB").getcolors(40 * 30) or []) > 100


def test_demo_refuses_an_unknown_label() -> None:
    with pytest.raises(ValueError, match="unknown label 'teal'"):
        make_demo_image("teal", random.Random(0))


def test_demo_backend_answers_400_to_a_body_that_is_not_an_image() -> None:
    with recognizer(backend="demo") as client:
        r = client.post("/recognize", content=b"definitely not an image")
    assert r.status_code == 400
    assert "is not an image" in r.text

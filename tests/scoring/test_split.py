"""The public/private split (gateway.scoring.split): fixed by the seed, near the fraction."""

from gateway.scoring.split import Split


def test_the_split_is_fixed_by_its_seed_and_near_its_fraction() -> None:
    split = Split(seed=2021, public_fraction=0.5)
    public = [i for i in range(1, 10_001) if split.is_public(i)]
    assert public == [i for i in range(1, 10_001) if Split(2021, 0.5).is_public(i)]
    assert 4_800 < len(public) < 5_200
    other = [i for i in range(1, 10_001) if Split(2022, 0.5).is_public(i)]
    assert other != public
    assert split.part_of(public[0]) == "public"


def test_no_split_when_every_image_is_public() -> None:
    assert Split.of(7, 1.0) is None
    assert Split.of(None, 0.5) is None
    assert Split.of(7, 0.25) == Split(7, 0.25)

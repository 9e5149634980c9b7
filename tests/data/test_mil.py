import pytest
import torch

from behavior.data import mil
from behavior.data.datasets import BagBatchSampler, BagDataset, collate_bags

FIGHT, BACKGROUND = 0, 1
POOLINGS = ("max",)


def table_columns():
    """Six sequences of three videos: two people in v1, one in v2 (whole frame), two in v3."""
    rows = [("fight/v1", 0, "fight/v1/person_2/frame_000010.jpg"),
            ("fight/v1", 0, "fight/v1/person_1/frame_000000.jpg"),
            ("noFight/v2", 1, "noFight/v2/person_0/frame_000000.jpg"),
            ("fight/v1", 0, "fight/v1/person_1/frame_000008.jpg"),
            ("noFight/v3", 1, "noFight/v3/person_1/frame_000000.jpg"),
            ("noFight/v3", 1, "noFight/v3/person_3/frame_000000.jpg")]
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def test_bags_from_a_sequences_table():
    videos, labels, first = table_columns()
    bags = mil.make_bags(videos, labels, first, range(len(videos)))
    assert [b.video for b in bags] == ["fight/v1", "noFight/v2", "noFight/v3"]
    every_row = sorted(r for b in bags for r in b.rows)
    assert every_row == list(range(6))  # every sequence in exactly one bag
    for bag in bags:
        assert {videos[r] for r in bag.rows} == {bag.video}  # bags never cross videos
        assert {labels[r] for r in bag.rows} == {bag.label}
        assert [bag.persons[k] for k in bag.person] == [mil.person_of(first[r]) for r in bag.rows]
    assert bags[0].persons == ("person_1", "person_2") and bags[0].sequences_of() == [2, 1]
    assert bags[1].persons == ("person_0",)
    # a subset of rows makes bags of those rows only
    assert [b.rows for b in mil.make_bags(videos, labels, first, [4, 0])] == [(0,), (4,)]


def test_people_the_user_labeled_keep_their_labels():
    """A fight clip whose person_1 the user labeled "punch" and then "none": in training each label of theirs is a bag
    of its own and person_2 stays the clip's; in evaluation the clip is one bag with the clip's label, as is a clip
    whose every person was labeled; "roles" relabels only the people the user did not label."""
    from behavior.io.sequence_file import SequenceTable

    classes = ["fight", "none", "punch"]
    rows = [("fight/v1/person_1/frame_000000.jpg", 2, True), ("fight/v1/person_2/frame_000000.jpg", 0, False),
            ("fight/v1/person_1/frame_000040.jpg", 1, True), ("fight/v2/person_1/frame_000000.jpg", 2, True)]
    table = SequenceTable([str(k) for k in range(4)], ["train"] * 4, [r[1] for r in rows],
                          [r[0].rsplit("/", 2)[0] for r in rows], [[r[0]] for r in rows], classes,
                          [r[2] for r in rows])
    training = mil.table_bags(table, [0, 1, 2, 3], people_apart=True)
    assert [(b.video, b.label, b.rows) for b in training] == [
        ("fight/v1", 0, (1,)), ("fight/v1#person_1#1", 1, (2,)), ("fight/v1#person_1#2", 2, (0,)),
        ("fight/v2#person_1#2", 2, (3,))]
    evaluation = mil.table_bags(table, [0, 1, 2, 3])
    assert [(b.video, b.label, b.rows) for b in evaluation] == [("fight/v1", 0, (0, 1, 2)), ("fight/v2", 0, (3,))]
    stats = {"fight/v1/person_1": mil.PersonStats(900.0, 0.0), "fight/v1/person_2": mil.PersonStats(10.0, 0.0)}
    roles = mil.with_person_labels(table, [0, 1, 2, 3], stats, (), background=1)
    assert roles.labels == [2, 1, 1, 2]  # person_2, seen far less than the labeled person_1, passes by
    stats["fight/v1/person_2"] = mil.PersonStats(800.0, 0.0)
    assert mil.with_person_labels(table, [0, 1, 2, 3], stats, (), background=1).labels == [2, 0, 1, 2]  # a main one


def people(*rows):
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_one_fighter_makes_a_fight_clip_and_bystanders_may_stay_background(pooling):
    fighter_and_bystanders = people([0.95, 0.05], [0.05, 0.95], [0.1, 0.9])
    nobody = people([0.05, 0.95], [0.1, 0.9], [0.05, 0.95])
    target = torch.tensor([FIGHT])
    weights = torch.ones(2, dtype=torch.float64)

    def loss(bag, label):
        probs = mil.bag_probs(bag, pooling, background=BACKGROUND)[None]
        return float(mil.bag_loss(probs, torch.tensor([label]), weights))

    assert loss(fighter_and_bystanders, FIGHT) < 0.7  # a bag with one strong positive instance: low loss
    assert loss(nobody, FIGHT) > 1.5  # no positive instance: high loss
    assert loss(nobody, BACKGROUND) < 0.3
    assert loss(fighter_and_bystanders, BACKGROUND) > 0.6  # a background bag with one fighter: high loss
    assert loss(fighter_and_bystanders, BACKGROUND) > 5 * loss(nobody, BACKGROUND)
    # per-sequence training's view ("mean") blames the bystanders: the same fight clip costs more
    mean = float(mil.bag_loss(mil.bag_probs(fighter_and_bystanders, "mean")[None], target, weights))
    assert mean > loss(fighter_and_bystanders, FIGHT)


def test_without_a_background_class_the_most_telling_person_carries_the_label():
    actor_and_receiver = people([0.8, 0.1, 0.1], [0.2, 0.3, 0.5])  # kick, punch, push
    probs = mil.bag_probs(actor_and_receiver, "max")
    assert int(probs.argmax()) == 0 and float(probs.sum()) == pytest.approx(1.0)
    assert int(mil.bag_probs(actor_and_receiver, "mean").argmax()) == 0


def test_pooling_values_and_limits():
    x = torch.tensor([0.9, 0.5, 0.1], dtype=torch.float64)
    assert float(mil.pool(x, "max")) == pytest.approx(0.9)
    assert float(mil.pool(x, "max", dual=True)) == pytest.approx(0.1)
    assert float(mil.pool(x, "mean", weights=torch.tensor([1.0, 0.0, 1.0]))) == pytest.approx(0.5)
    one = torch.tensor([0.3], dtype=torch.float64)
    assert all(float(mil.pool(one, p)) == pytest.approx(0.3) for p in (*POOLINGS, "mean"))
    with pytest.raises(ValueError, match="unknown pooling"):
        mil.pool(x, "median")


def test_clip_probs_pool_people_not_sequences():
    videos, labels, first = table_columns()
    bags = mil.make_bags(videos, labels, first, range(6))
    order = [r for b in bags for r in b.rows]  # rows 1, 3 are person_1 of v1; 0 is person_2
    seq = {0: [0.9, 0.1], 1: [0.2, 0.8], 3: [0.4, 0.6], 2: [0.3, 0.7], 4: [0.1, 0.9], 5: [0.2, 0.8]}
    probs = torch.tensor([seq[r] for r in order], dtype=torch.float64)
    persons, counts, bag_of = mil.people_probs(probs, bags)
    assert persons[:2].flatten().tolist() == pytest.approx([0.3, 0.7, 0.9, 0.1])  # v1: person_1 (mean of 2), person_2
    assert counts.tolist() == [2, 1, 1, 1, 1] and bag_of.tolist() == [0, 0, 1, 2, 2]
    mean = mil.clip_probs(probs, bags, "none")  # the mean over a clip's sequences, as before MIL
    assert mean[0].tolist() == pytest.approx([0.5, 0.5])
    top = mil.clip_probs(probs, bags, "max", background=BACKGROUND)
    assert top[0].tolist() == pytest.approx([0.9, 0.1])  # the fighter (person_2) decides both sides
    assert int(top[2].argmax()) == BACKGROUND


def test_gradients_reach_the_telling_person_only_under_max():
    logits = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    bag = mil.Bag("fight/v", FIGHT, (0, 1, 2), (0, 1, 1), ("person_1", "person_2"))
    with torch.no_grad():
        logits[0, FIGHT] = 2.0
    probs = mil.clip_probs(torch.softmax(logits, -1), [bag], "max", background=BACKGROUND)
    mil.bag_loss(probs, torch.tensor([FIGHT]), torch.ones(2, dtype=torch.float64)).backward()
    assert logits.grad[0].abs().sum() > 0  # the fighter is pushed to fight harder...
    # ...and the background side pools with a min: it pushes only the person least like background (the fighter)
    assert logits.grad[1:].abs().sum() == 0


def test_bag_batches_cover_every_bag_once_within_the_budget():
    sizes = [3, 1, 4, 1, 5, 9, 2, 6]
    sampler = BagBatchSampler(sizes, budget=6, generator=torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert sorted(b for batch in batches for b in batch) == list(range(8))
    assert all(sum(sizes[b] for b in batch) <= 6 or len(batch) == 1 for batch in batches)
    assert list(sampler) != batches or len(batches) == 1  # reshuffled each epoch
    shares = [list(BagBatchSampler(sizes, 6, torch.Generator().manual_seed(1), rank, 2)) for rank in (0, 1)]
    assert len(shares[0]) == len(shares[1]) > 0  # every process takes the same number of steps
    assert not {b for batch in shares[0] for b in batch} & {b for batch in shares[1] for b in batch}


def test_bag_dataset_and_collate_keep_whole_bags():
    class Sequences(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, n):
            return torch.full((4, 2), float(n)), torch.full((4, 3), float(n)), torch.tensor(0)

    videos, labels, first = table_columns()
    rows = [5, 4, 3, 2, 1, 0]  # the dataset's item n is row rows[n]
    bags = mil.make_bags(videos, labels, first, rows)
    data = BagDataset(Sequences(), rows, bags)
    x, v, y, chosen = collate_bags([data[0], data[2]], bags)
    assert x.shape == (5, 4, 2) and v.shape == (5, 4, 3)
    assert x[:, 0, 0].tolist() == [2.0, 4.0, 5.0, 0.0, 1.0]  # v1's rows 3, 1, 0 then v3's rows 5, 4, as items
    assert y.tolist() == [0, 1] and [b.video for b in chosen] == ["fight/v1", "noFight/v3"]


def test_roles_main_people_act_and_in_one_actor_clips_the_one_who_reaches_out():
    people = {"person_1": mil.PersonStats(1000.0, 3.0), "person_2": mil.PersonStats(900.0, 9.0),
              "person_3": mil.PersonStats(120.0, 20.0)}  # a passer-by reaching far, seen little
    assert mil.roles(people, "hug", ["kick"], "none") == {"person_1": "hug", "person_2": "hug", "person_3": "none"}
    assert mil.roles(people, "kick", ["kick"], "none") == {  # the bystander is never the actor
        "person_1": "kick_received", "person_2": "kick", "person_3": "none"}
    assert set(mil.roles(people, "none", ["kick"], "none").values()) == {"none"}  # a background clip
    share = mil.MAIN_PERSON_SHARE
    edge = {"person_1": mil.PersonStats(100.0, 0.0), "person_2": mil.PersonStats(100.0 * share, 0.0)}
    assert mil.roles(edge, "hug", [], "none") == {"person_1": "hug", "person_2": "hug"}  # the share still counts
    whole_frame = {"person_0": mil.PersonStats(0.0, 0.0)}
    assert mil.roles(whole_frame, "kick", ["kick"], "none") == {"person_0": "kick"}
    assert mil.roles({}, "kick", ["kick"], "none") == {}


def test_received_classes_fold_into_their_action():
    classes = ["hug", "kick", "none", "kick_received"]
    people = torch.tensor([[0.1, 0.6, 0.1, 0.2], [0.0, 0.2, 0.1, 0.7]], dtype=torch.float64)
    folded = mil.fold_received(people, classes, ["kick"])
    assert folded[:, 1].tolist() == pytest.approx([0.8, 0.9]) and folded[:, 3].tolist() == [0.0, 0.0]
    assert torch.equal(folded[:, [0, 2]], people[:, [0, 2]])  # the other classes keep their share
    assert people[:, 3].tolist() == [0.2, 0.7]  # the input is not changed
    assert torch.equal(mil.fold_received(people, classes, []), people)  # no actor classes: nothing moves


def test_a_model_that_learned_who_acts_labels_the_video_with_the_received_action_and_its_actor():
    classes = ["kick", "hug", "none", "kick_received"]
    people = torch.tensor([[0.5, 0.0, 0.3, 0.2], [0.0, 0.1, 0.2, 0.7],  # the kicker and the one kicked,
                           [0.0, 0.3, 0.7, 0.0], [0.1, 0.0, 0.9, 0.0]])  # two passers-by
    weights = torch.tensor([4.0, 4.0, 6.0, 6.0])  # the passers-by are seen longest
    rule = mil.label_rule("roles", ("kick",))
    assert rule == "mean_min" == mil.label_rule("none", ("kick",))  # the latter: checkpoints before "roles"
    folded = mil.fold_received(people, classes, ["kick"])
    assert int(mil.bag_probs(folded, rule, background=2, weights=weights).argmax()) == 0
    assert int(mil.bag_probs(folded, "mean", background=2, weights=weights).argmax()) == 2  # the mean says none
    assert int(mil.bag_probs(people, rule, background=2, weights=weights).argmax()) == 2  # unfolded, too


def test_focal_gamma_weighs_clips_by_how_wrong_they_are():
    """FOCAL_GAMMA reaches bag training too: a clip scored right counts for less than one scored wrong."""
    probs = torch.tensor([[0.9, 0.1], [0.3, 0.7]], dtype=torch.float64)
    target, weights = torch.tensor([0, 0]), torch.ones(2, dtype=torch.float64)
    assert float(mil.bag_loss(probs, target, weights, gamma=0.0)) == pytest.approx(
        float(-(torch.log(torch.tensor(0.9)) + torch.log(torch.tensor(0.3))) / 2), rel=1e-6)
    per_clip = [float(mil.bag_loss(probs[i:i + 1], target[:1], weights, gamma=2.0)) for i in range(2)]
    plain = [float(mil.bag_loss(probs[i:i + 1], target[:1], weights)) for i in range(2)]
    assert per_clip[0] / plain[0] == pytest.approx(0.1 ** 2) and per_clip[1] / plain[1] == pytest.approx(0.7 ** 2)

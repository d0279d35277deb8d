"""A corrupted snapshot upload is refused, and the data it would have replaced is intact.

A shard snapshot is taken and downloaded; one byte in the middle of its points is flipped and the file is
uploaded back to recover the shard with `priority=snapshot`. The node reads and verifies the archive
(sizes, content digest) before touching anything: the upload is refused. A second upload with the right
bytes but a wrong `checksum` is refused too (400). Expect: both refusals, unchanged digests, every
acknowledged write present.
"""

from cluster.runner import CollectionSpec, RunContext, Scenario, ScenarioError


async def plan(ctx: RunContext) -> None:
    await ctx.load("c", 500)
    holder, _free = await ctx.shard_holders("c", 0)
    node = ctx.name_of(holder)
    before = await ctx.digests("c")
    snapshot = await ctx.snapshot_create("c", node, shard=0)
    data = bytearray(await ctx.snapshot_download(node, "c", snapshot["name"], shard=0))
    position = len(data) // 2 + ctx.rng.randrange(1024)
    data[position] ^= 0xFF
    ctx.log(f"flipped byte {position} of {len(data)}")
    process = next(ctx.processes)
    corrupt = await ctx.client.snapshot_upload(process, ctx.node_url(node), "c", 0, holder, "corrupt.snapshot",
                                               bytes(data), "snapshot", corrupt=True)
    wrong = await ctx.client.snapshot_upload(process, ctx.node_url(node), "c", 0, holder, "intact.snapshot",
                                             bytes(data), "snapshot", checksum="0" * 64, corrupt=True)
    after = await ctx.digests("c")
    if corrupt.completion == "ok" or wrong.completion == "ok":
        raise ScenarioError("a corrupted or mis-checksummed snapshot was accepted")
    if before != after:
        raise ScenarioError(f"digests changed: {before} -> {after}")


SCENARIO = Scenario(
    name="corrupted_upload_refused",
    description=__doc__ or "",
    plan=plan,
    collections={"c": CollectionSpec(shard_number=1, replication_factor=2, vector_size=8)},
    checkers=("no_lost_writes", "replicas_converge", "snapshot_integrity", "nothing_stuck"),
)

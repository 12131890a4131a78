import time

import numpy as np

from pipeline.bench_stages import PeakMemory


def test_peak_memory_samples_every_block_and_keeps_the_peak_over_them():
    mem = PeakMemory(interval=0.01)
    with mem:
        time.sleep(0.05)
    small = mem.self_mib
    with mem:  # entered again: this block is sampled too
        big = np.ones(128 * 2**20, np.uint8)  # 128 MiB, touched
        time.sleep(0.2)
    del big
    assert mem.self_mib > small + 100
    peak = mem.self_mib
    with mem:  # a later, smaller block does not lower the peak
        time.sleep(0.05)
    assert mem.self_mib >= peak and mem.total_mib >= mem.self_mib
    assert mem.to_dict()["peak_rss_main_mib"] == round(mem.self_mib, 1)

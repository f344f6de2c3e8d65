# PGP as its public code runs it (pgp_target_expo.py), as changes to a PGP
# config (`_base_` it beside one and write
# custom_hooks = [dict(_base_.custom_hooks[0], **_base_.pgp_code)]):
# filters ranked by |sum over the epoch of W * dL/dW| per filter
# (TaylorWeight); of each step's selection the weakest `remove_ratio` are
# removed and the rest re-initialised to keep training (soft_mode='reinit');
# the last step removes everything it selects. The script takes remove_ratio
# as an option: 0.5 here. Its schedule, keep(e) = C * exp(-decay * (e + 1)),
# is the 'geometric' ramp of prunedet's form, and the FLOPs target stays
# that of the PGP config, so the two forms compare at equal FLOPs.
pgp_code = dict(
    criterion=dict(type='TaylorWeight'),
    soft_steps=None,
    remove_ratio=0.5,
    soft_mode='reinit')

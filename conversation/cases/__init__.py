"""The case rules, pure: storage and bot consult these modules and nobody copies them.

- `lifecycle`: statuses, the transition table, `IllegalTransition`
- `progress`: a step the back office reports, and the fields each step needs
- `citizen`: the steps a citizen hears about and sees in their history
- `kinds`: the path a petition and a suggestion each follow
- `stages`: the office's local stages and calendar, as the office file declares them
- `deadlines`: the legal time limits of 《信访工作条例》 and the local stages, counted
- `due`: which deadlines are open on a case, and which is next
- `surveys`: the satisfaction survey's scale, lifetime and quiet hours

Standard library only: no storage, bot, aiohttp, SQLAlchemy or Redis.
"""

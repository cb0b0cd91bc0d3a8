"""`filler`: making a slotted frozen dataclass's instances without its __init__, and without a `__dict__`.

The parser makes a span for every token it keeps and the check a node, a record and a tensor for every
statement.  A frozen dataclass's __init__ sets each field with object.__setattr__ (twice the time of a plain
store).  Writing the fields through `obj.__dict__` instead made the dict: an object of its own that the young
collection after the check walks (~430 in ResNet50's first plan), and an instance with a made dict misses
the interpreter's inline-values fast path on every attribute read after.  A slotted class has no dict, and
its filler's plain slot stores are the fast way in.
"""

from __future__ import annotations


def filler(cls: type) -> type:
    """A subclass of the slotted frozen dataclass `cls` whose fields can be assigned: a maker makes one with
    `object.__new__`, assigns every field and sets its `__class__` to `cls`.  That is the frozen object its
    __init__ makes (equal, same hash and repr; an assignment raises).  Both setattr slots are object's: with
    either one `cls`'s, Python keeps the class's __setattr__ as a Python call for every store."""
    return type(f"{cls.__name__}Filler", (cls,), {"__slots__": (), "__setattr__": object.__setattr__,
                                                   "__delattr__": object.__delattr__, "__module__": cls.__module__})

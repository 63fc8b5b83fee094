"""A cache layer given room to grow holds what concatenation would, through steps, growth past its room
and rows leaving the batch."""

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from elad.students.decoding import GrowingLayer, room_to_grow


def filled_cache(rows=3, length=5, layers=2):
    cache = DynamicCache()
    for index in range(layers):
        cache.update(torch.randn(rows, 2, length, 4), torch.randn(rows, 2, length, 4), index)
    return cache


def test_steps_rows_leaving_and_growth_past_the_room_match_concatenation():
    torch.manual_seed(0)
    grown = filled_cache()
    plain = filled_cache()
    for layer_grown, layer_plain in zip(grown.layers, plain.layers):
        layer_plain.keys, layer_plain.values = layer_grown.keys.clone(), layer_grown.values.clone()
    room_to_grow(grown, room=2)
    assert all(type(layer) is GrowingLayer for layer in grown.layers)
    for step in range(6):  # four steps more than the room
        if step == 3:
            for cache in (grown, plain):
                cache.batch_select_indices(torch.tensor([0, 2]))
        rows = grown.layers[0].keys.shape[0]
        for index in range(2):
            new_keys, new_values = torch.randn(rows, 2, 1, 4), torch.randn(rows, 2, 1, 4)
            keys, values = grown.update(new_keys, new_values, index)
            expected_keys, expected_values = plain.update(new_keys.clone(), new_values.clone(), index)
            assert torch.equal(keys, expected_keys) and torch.equal(values, expected_values)
    assert grown.get_seq_length() == plain.get_seq_length() == 11
    assert grown.layers[0].key_buffer.shape[-2] >= 11


def test_only_filled_plain_layers_are_given_room():
    cache = filled_cache(layers=1)
    empty = DynamicLayer()
    cache.layers.append(empty)
    room_to_grow(cache, room=4)
    assert type(cache.layers[0]) is GrowingLayer and cache.layers[0].key_buffer.shape[-2] == 9
    assert type(cache.layers[1]) is DynamicLayer

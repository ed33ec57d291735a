"""Pre- and post-processing operations, backed by the native core ``edgeseg._core``.

Each submodule wraps one part of the core with argument checking and small dataclasses:

- :mod:`edgeseg.ops.letterbox`  -- ``letterbox``, ``LetterboxInfo``, ``scale_boxes``
- :mod:`edgeseg.ops.decode`     -- ``decode``, ``Candidates``
- :mod:`edgeseg.ops.decode_split` -- ``decode_split`` (split-output / int8 heads), ``SplitLayout``
- :mod:`edgeseg.ops.nms`        -- ``nms``
- :mod:`edgeseg.ops.masks`      -- ``masks_native``, ``masks_input``, ``MaskSet``
- :mod:`edgeseg.ops.polygons`   -- ``polygons``
- :mod:`edgeseg.ops.quant`      -- ``dequantize`` (int8/uint8 outputs)
- :mod:`edgeseg.ops.track`      -- ``TrackerCore``, ``TrackerConfig``, ``TrackTable`` (ByteTrack-style tracking)
- :mod:`edgeseg.ops.selection`  -- ``row_indices``, ``SelectionError`` (row selection of the containers)
"""

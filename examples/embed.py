"""Use edgeseg from your own application: segment a frame, use the results, draw them."""

import sys

import cv2

from edgeseg import Segmenter
from edgeseg.annotate import draw

segmenter = Segmenter(sys.argv[1], conf=0.4, classes=["person"])  # e.g. yolov8n-seg.onnx
frame = cv2.imread(sys.argv[2])  # any BGR frame: camera, video, file
detections = segmenter(frame)
for row, area in zip(detections.to_rows(polygons=None), detections.mask_area):
    print(f"{row['name']} {row['confidence']:.2f} box={row['box']} mask={area} px")
cv2.imwrite("annotated.jpg", draw(frame, detections))

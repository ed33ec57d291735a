"""Plain numpy reference of edgeseg's tracker (ByteTrack-style association, xyah Kalman filter), float64.

Written from the specification, not from the C++: matrices as in ByteTrack's ``KalmanFilter`` (F, H, Q, R,
a linear solve for the gain), the assignment as a min-cost flow by successive shortest paths (Bellman-Ford),
mask IoU by slicing the two bitmaps over their overlap.

Rules (the same as edgeseg.ops.track):

1. every track predicts ``min(steps, lost_frames + 1)`` times (a lost track has ``mean[7] = 0`` before each),
   ``frames_since_update`` and ``age`` grow by ``steps``;
2. high detections (score >= high_thresh) x confirmed tracks (tracked or lost), ``match_thresh``;
3. low detections (low_thresh <= score < high_thresh) x the confirmed tracks left (tracked or lost; a matched
   lost track is tracked again), ``low_match_thresh``; the tracked confirmed tracks still unmatched become lost;
4. high detections left x tentative tracks, ``tentative_match_thresh``; a tentative track with
   ``hits >= min_hits`` is confirmed and takes the next id (in track order); unmatched tentative tracks go;
5. high detections left with score >= new_track_thresh start tentative tracks (in detection order;
   confirmed at once when min_hits <= 1);
6. lost tracks with frames_since_update > lost_frames go.

A pair can match only when its similarity is strictly above the stage's threshold; the matching maximises
the sum of (similarity - threshold) over matched pairs (lap.lapjv with cost 1 - sim and cost_limit 1 - thresh).
Similarity: box IoU of the predicted box and the detection, or ``(1 - w) * box_iou + w * mask_iou`` when
mask_weight w > 0 and both have masks (mask IoU only where the box IoU is > 0). With class_consistent, pairs of
different classes never match. Zero-size detection boxes take no part.
"""

from __future__ import annotations

import math

import numpy as np

SP = 1.0 / 20.0
SV = 1.0 / 160.0
F = np.eye(8)
F[:4, 4:] = np.eye(4)
H = np.eye(4, 8)

TENTATIVE, TRACKED, LOST = 0, 1, 2


# ---- Kalman filter (ByteTrack's xyah filter) --------------------------------------------------------------


def kf_initiate(z):
    h = z[3]
    mean = np.r_[z, np.zeros(4)]
    std = np.array([2 * SP * h, 2 * SP * h, 1e-2, 2 * SP * h, 10 * SV * h, 10 * SV * h, 1e-5, 10 * SV * h])
    return mean, np.diag(np.square(std))


def kf_predict(mean, cov):
    h = mean[3]
    q = np.square([SP * h, SP * h, 1e-2, SP * h, SV * h, SV * h, 1e-5, SV * h])
    return F @ mean, F @ cov @ F.T + np.diag(q)


def kf_update(mean, cov, z):
    h = mean[3]
    r = np.square([SP * h, SP * h, 1e-1, SP * h])
    s = H @ cov @ H.T + np.diag(r)
    try:
        np.linalg.cholesky(s)
    except np.linalg.LinAlgError:
        return kf_initiate(z)
    k = np.linalg.solve(s, (cov @ H.T).T).T
    return mean + k @ (z - H @ mean), cov - k @ s @ k.T


def xyah(box):
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = x2 - x1, y2 - y1
    return np.array([x1 + w / 2, y1 + h / 2, w / h, h])


def mean_box(mean):
    w, h = mean[2] * mean[3], mean[3]
    return np.array([mean[0] - w / 2, mean[1] - h / 2, mean[0] + w / 2, mean[1] + h / 2])


# ---- assignment ------------------------------------------------------------------------------------------


def best_matching(gain):
    """Maximum-gain bipartite matching over the pairs with gain > 0 (``gain``: [n, m], <= 0 means "never").

    Min-cost flow by successive shortest paths (Bellman-Ford on the residual graph, costs -gain), stopping when
    no augmenting path has negative cost. Returns row -> column (or -1).
    """
    n, m = gain.shape
    src, dst = n + m, n + m + 1
    to, cap, cost, adj = [], [], [], [[] for _ in range(n + m + 2)]

    def edge(a, b, c):
        for u, v, k, c_ in ((a, b, 1, c), (b, a, 0, -c)):
            adj[u].append(len(to))
            to.append(v)
            cap.append(k)
            cost.append(c_)

    for i in range(n):
        edge(src, i, 0.0)
    for j in range(m):
        edge(n + j, dst, 0.0)
    for i, j in zip(*np.nonzero(gain > 0)):
        edge(int(i), n + int(j), -float(gain[i, j]))
    while True:
        dist = [math.inf] * (n + m + 2)
        back = [-1] * (n + m + 2)
        dist[src] = 0.0
        for _ in range(n + m + 1):
            changed = False
            for a in range(n + m + 2):
                if dist[a] == math.inf:
                    continue
                for e in adj[a]:
                    if cap[e] and dist[a] + cost[e] < dist[to[e]]:
                        dist[to[e]] = dist[a] + cost[e]
                        back[to[e]] = e
                        changed = True
            if not changed:
                break
        if not dist[dst] < 0:
            break
        b = dst
        while b != src:
            e = back[b]
            cap[e] -= 1
            cap[e ^ 1] += 1
            b = to[e ^ 1]
    match = np.full(n, -1, np.int64)
    for i in range(n):
        for e in adj[i]:
            if to[e] >= n and to[e] < n + m and cap[e] == 0 and e % 2 == 0:
                match[i] = to[e] - n
    return match


def linear_assignment(cost, limit):
    """lap.lapjv(cost, extend_cost=True, cost_limit=limit) semantics: row -> column or -1."""
    cost = np.asarray(cost, dtype=np.float64)
    return best_matching(np.where(cost < limit, limit - cost, 0.0))


# ---- tracker ---------------------------------------------------------------------------------------------


def round_half_away(x):
    a = abs(x)
    r = math.floor(a)
    if a - r >= 0.5:
        r += 1
    return int(r) if x >= 0 else -int(r)


class _Track:
    pass


class Tracker:
    def __init__(
        self,
        *,
        high_thresh=0.5,
        low_thresh=0.1,
        new_track_thresh=0.6,
        match_thresh=0.2,
        low_match_thresh=0.3,
        tentative_match_thresh=0.3,
        min_hits=2,
        lost_frames=30,
        mask_weight=0.0,
        class_consistent=True,
    ):
        self.high_thresh = high_thresh
        self.low_thresh = low_thresh
        self.new_track_thresh = new_track_thresh
        self.match_thresh = match_thresh
        self.low_match_thresh = low_match_thresh
        self.tentative_match_thresh = tentative_match_thresh
        self.min_hits = min_hits
        self.lost_frames = lost_frames
        self.mask_weight = mask_weight
        self.class_consistent = class_consistent
        self.reset()

    def reset(self):
        self.tracks_ = []
        self.next_id = 1

    # -- one pair

    def _similarity(self, t, d):
        if self.class_consistent and t.cls != int(self._cls[d]):
            return -1.0
        p = t.pbox
        bx1, by1, bx2, by2 = (float(v) for v in self._boxes[d])
        iw = min(p[2], bx2) - max(p[0], bx1)
        ih = min(p[3], by2) - max(p[1], by1)
        if not (iw > 0 and ih > 0):
            return 0.0
        inter = iw * ih
        union = (p[2] - p[0]) * (p[3] - p[1]) + (bx2 - bx1) * (by2 - by1) - inter
        if not union > 0:
            return 0.0
        iou = inter / union
        if self._masks is None or t.bits is None:
            return iou
        miou = 0.0
        ddx, ddy = t.mean[0] - t.cx, t.mean[1] - t.cy
        if abs(ddx) < 1e9 and abs(ddy) < 1e9:
            dx, dy = round_half_away(ddx), round_half_away(ddy)
            tx0, ty0, tx1, ty1 = t.rect[0] + dx, t.rect[1] + dy, t.rect[2] + dx, t.rect[3] + dy
            r = self._rects[d]
            ox0, ox1 = max(tx0, r[0]), min(tx1, r[2])
            oy0, oy1 = max(ty0, r[1]), min(ty1, r[3])
            inter_px = 0
            if ox0 < ox1 and oy0 < oy1:
                a = t.bits[oy0 - ty0 : oy1 - ty0, ox0 - tx0 : ox1 - tx0] != 0
                b = self._bitmap(d)[oy0 - r[1] : oy1 - r[1], ox0 - r[0] : ox1 - r[0]] != 0
                inter_px = int(np.count_nonzero(a & b))
            union_px = t.area + int(np.count_nonzero(self._bitmap(d))) - inter_px
            if union_px > 0:
                miou = inter_px / union_px
        w = self.mask_weight
        return (1.0 - w) * iou + w * miou

    def _bitmap(self, d):
        x0, y0, x1, y1 = self._rects[d]
        return self._data[self._offsets[d] : self._offsets[d + 1]].reshape(y1 - y0, x1 - x0)

    def _associate(self, rows, cols, thresh):
        gain = np.zeros((len(rows), len(cols)))
        for i, ti in enumerate(rows):
            for j, d in enumerate(cols):
                s = self._similarity(self.tracks_[ti], d)
                if s > thresh:
                    gain[i, j] = s - thresh
        if not len(rows) or not len(cols):
            return [-1] * len(rows)
        return [cols[j] if j >= 0 else -1 for j in best_matching(gain)]

    def _store_det(self, t, d, z):
        t.score = float(self._scores[d])
        t.cx, t.cy = z[0], z[1]
        if self._masks is not None:
            t.rect = [int(v) for v in self._rects[d]]
            t.bits = self._bitmap(d).copy()
            t.area = int(np.count_nonzero(t.bits))
        else:
            t.bits = None

    def _apply(self, t, d):
        z = xyah(self._boxes[d])
        t.mean, t.cov = kf_update(t.mean, t.cov, z)
        t.fsu = 0
        t.hits += 1
        if not self.class_consistent:
            t.cls = int(self._cls[d])
        self._store_det(t, d, z)

    # -- one frame

    def update(self, boxes, scores, class_ids, masks=None, steps=1):
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        scores = np.asarray(scores, np.float32)
        n = len(boxes)
        self._boxes, self._scores, self._cls = boxes, scores, np.asarray(class_ids)
        self._masks = None
        if masks is not None and self.mask_weight > 0:
            if hasattr(masks, "rects"):
                masks = (masks.rects, masks.data, masks.offsets)
            self._masks = masks
            self._rects = np.asarray(masks[0]).astype(np.int64)
            self._data = np.asarray(masks[1])
            self._offsets = np.asarray(masks[2]).astype(np.int64)

        for t in self.tracks_:
            for _ in range(min(steps, self.lost_frames + 1)):
                if t.state == LOST:
                    t.mean[7] = 0.0
                t.mean, t.cov = kf_predict(t.mean, t.cov)
            t.fsu += steps
            t.age += steps
            t.pbox = [float(v) for v in mean_box(t.mean)]

        valid = [bool(b[2] > b[0] and b[3] > b[1]) for b in boxes]
        high = [d for d in range(n) if valid[d] and float(scores[d]) >= self.high_thresh]
        low = [d for d in range(n) if valid[d] and self.low_thresh <= float(scores[d]) < self.high_thresh]
        det_track = [-1] * n
        old = list(self.tracks_)
        matched = {id(t): False for t in old}

        confirmed = [i for i, t in enumerate(old) if t.state != TENTATIVE]
        for ti, d in zip(confirmed, self._associate(confirmed, high, self.match_thresh)):
            if d >= 0:
                t = old[ti]
                self._apply(t, d)
                t.state = TRACKED
                matched[id(t)] = True
                det_track[d] = ti

        left = [i for i in confirmed if not matched[id(old[i])]]
        for ti, d in zip(left, self._associate(left, low, self.low_match_thresh)):
            t = old[ti]
            if d < 0:
                t.state = LOST
                continue
            self._apply(t, d)
            t.state = TRACKED
            matched[id(t)] = True
            det_track[d] = ti

        tentative = [i for i, t in enumerate(old) if t.state == TENTATIVE]
        rest = [d for d in high if det_track[d] < 0]
        for ti, d in zip(tentative, self._associate(tentative, rest, self.tentative_match_thresh)):
            if d < 0:
                continue
            t = old[ti]
            self._apply(t, d)
            if t.hits >= self.min_hits:
                t.state = TRACKED
                t.id = self.next_id
                self.next_id += 1
            matched[id(t)] = True
            det_track[d] = ti

        for d in rest:
            if det_track[d] >= 0 or float(scores[d]) < self.new_track_thresh:
                continue
            t = _Track()
            z = xyah(boxes[d])
            t.mean, t.cov = kf_initiate(z)
            t.cls = int(self._cls[d])
            t.hits, t.age, t.fsu = 1, 0, 0
            self._store_det(t, d, z)
            if self.min_hits <= 1:
                t.state, t.id = TRACKED, self.next_id
                self.next_id += 1
            else:
                t.state, t.id = TENTATIVE, 0
            self.tracks_.append(t)
            det_track[d] = len(self.tracks_) - 1

        ids = np.array([self.tracks_[k].id if k >= 0 and self.tracks_[k].id > 0 else -1 for k in det_track], np.int64)
        self.tracks_ = [
            t
            for t in self.tracks_
            if not (t.state == TENTATIVE and id(t) in matched and not matched[id(t)])
            and not (t.state == LOST and t.fsu > self.lost_frames)
        ]
        return ids

    def tracks(self):
        ts = self.tracks_
        return {
            "track_id": np.array([t.id for t in ts], np.int64),
            "state": np.array([t.state for t in ts], np.int32),
            "class_id": np.array([t.cls for t in ts], np.int32),
            "box": np.array([mean_box(t.mean) for t in ts], np.float64).reshape(-1, 4),
            "score": np.array([t.score for t in ts], np.float64),
            "hits": np.array([t.hits for t in ts], np.int64),
            "age": np.array([t.age for t in ts], np.int64),
            "frames_since_update": np.array([t.fsu for t in ts], np.int64),
        }

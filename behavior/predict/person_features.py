"""What the network reads of each person in a live frame, computed exactly as training computed it from stage 1's
files: the crop as saved, MobileNetV2 features (of the crop or of its difference to the track's last one), the
scene's I3D feature, pose keypoints and the vector streams (motion, pose, interaction)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from behavior.detect.crops import crop_person, letterbox, motion_image, scene_crop
from behavior.detect.pose import CropGeometry, PoseEstimator
from behavior.detect.tracking import Detection
from behavior.features.appearance import embed_crops
from behavior.features.objects import near_objects
from behavior.features.people import Person
from behavior.features.streams import StreamState, as_recorded
from behavior.features.video_backbone import ClipBuffer, VideoBackbone, fit_size
from behavior.io.frames import SceneObject
from behavior.io.video import Frame
from behavior.model.network import BehaviorNet, ModelConfig
from behavior.predict.tracks import TrackState


def as_saved(image: np.ndarray, model_config: ModelConfig) -> np.ndarray:
    """A BGR image exactly as training read it from stage 1's JPEGs: encoded at JPEG_QUALITY, decoded as RGB."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, model_config.jpeg_quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def training_crop(frame: np.ndarray, det: Detection, model_config: ModelConfig) -> np.ndarray:
    """The crop exactly as training saw it: stage 1's crop, as saved (``as_saved``)."""
    size = (model_config.frame_width, model_config.frame_height)
    crop = crop_person(frame, det.box, size,
                       model_config.crop_margin) if model_config.person_tracking else letterbox(frame, size)
    return as_saved(crop, model_config)


@dataclass
class FrameFeatures:
    """One frame's people as the network reads them, in detection order."""

    features: torch.Tensor | list[torch.Tensor]  # (people, dim): CNN and I3D features; empty rows without appearance
    vectors: list[np.ndarray]  # each person's stream vector (motion, pose, interaction...)
    keypoints: list[np.ndarray | None]  # each person's pose, for drawing
    objects: list[list[SceneObject]]  # the objects the objects stream reads beside each person, for drawing


class PersonFeatures:
    """The per-frame feature step of a prediction: crops, CNN, I3D, pose and streams of every person in a frame.

    Example:
        >>> people = PersonFeatures(net, net.cfg, "cpu", pose=None, video=None, timer=timer)  # doctest: +SKIP
        >>> found = people.compute(frame, detections, tracks)  # doctest: +SKIP
    """

    def __init__(self, net: BehaviorNet, model_config: ModelConfig, device: str, pose: PoseEstimator | None,
                 video: VideoBackbone | None, timer: Any) -> None:  # timer: the session's, marks each stage
        self.net, self.model_config, self.device = net, model_config, device
        self.pose, self.video, self.timer = pose, video, timer
        self.streams = StreamState(self.model_config.inputs, self.model_config.object_classes)
        self.objects = "objects" in self.model_config.inputs
        self.no_features = torch.zeros(0)  # what a track's feature buffer holds when the model reads no appearance
        self.scene_clip = ClipBuffer(self.model_config.video_clip_length)  # the scene's I3D clip (INPUTS "scene_video")

    def compute(self, frame: Frame, dets: list[Detection], tracks: list[TrackState],
                objects: list[SceneObject] = ()) -> FrameFeatures:
        """Features, stream vectors and keypoints of ``dets`` (whose ``tracks`` hold each one's previous crop);
        ``objects`` are the frame's non-person detections."""
        model_config = self.model_config
        scene_video = self._scene_video(frame.image) if "scene_video" in model_config.inputs else None
        if not dets:
            return FrameFeatures([], [], [], [])
        # crops only for what reads them: the CNNs and the pose model (a motion-only model needs none)
        crops = [training_crop(frame.image, d,
                               model_config) for d in dets] if model_config.appearance or self.pose is not None else []
        parts = []  # (people, dim) per feature stream, in FEATURE_STREAMS order
        if model_config.appearance:
            parts.append(self._appearance(crops, tracks))
        if scene_video is not None:
            parts.append(scene_video.expand(len(dets), -1))
        features = torch.cat(parts, dim=1) if parts else [self.no_features] * len(dets)
        self.timer.mark("crop_cnn")
        recorded = [as_recorded(d.box, frame.time_s) for d in dets]  # what training reads from tracks.csv
        boxes, t = [b for b, _ in recorded], recorded[0][1]
        keypoints: list[np.ndarray | None] = [None] * len(dets)
        if self.pose is not None:
            size = (model_config.frame_width, model_config.frame_height)
            keypoints = self.pose.estimate_source(crops, boxes, [CropGeometry.of(b, model_config.crop_margin, size)
                                                                 for b in boxes])
        people = [Person(d.track_id, b, k) for d, b, k in zip(dets, boxes, keypoints, strict=True)]
        seen = [SceneObject(o.name, as_recorded(o.box, t)[0], o.conf) for o in objects] if self.objects else []
        vectors = self.streams.step(people, t, seen)
        self.timer.mark("pose")
        beside = [near_objects(p, seen) for p in people] if self.objects else [[] for _ in people]
        return FrameFeatures(features, vectors, keypoints, beside)

    def forget(self, track: int) -> None:
        """Drop a lost track's stream history."""
        self.streams.forget(track)

    def _appearance(self, crops: list[np.ndarray], tracks: list[TrackState]) -> torch.Tensor:
        """MobileNetV2's features of the crops, or (CNN_INPUT "difference", as the feature cache) of their
        difference to each track's previous crop."""
        seen = crops
        if self.model_config.cnn_input == "difference":
            seen = [motion_image(c, st.last_crop) for c, st in zip(crops, tracks, strict=True)]
            for st, crop in zip(tracks, crops, strict=True):
                st.last_crop = crop
        return embed_crops(self.net, np.stack(seen), self.device)

    def _scene_video(self, image: np.ndarray) -> torch.Tensor:
        """I3D's feature (1, 1024) of the scene's clip, computed when a clip ends, held in between (as the cache).

        Every kept frame counts: the scene image is timed as cropping, I3D as its own stage.
        """
        model_config = self.model_config
        current = as_saved(scene_crop(image, (model_config.frame_width, model_config.frame_height)), model_config)
        self.timer.mark("crop_cnn")
        if self.scene_clip.push(fit_size(current, self.video.size)):
            self.scene_clip.feature = torch.from_numpy(self.video.embed(self.scene_clip.clip()[None]))
        self.timer.mark("i3d")
        return self.scene_clip.feature

"""Pipeline settings. Edit these constants to tune the tool.

Every constant can also be overridden for one run by a command-line flag of the same
name in kebab case, for example ``SEQUENCE_LENGTH`` -> ``--sequence-length 24``.
Relative paths are resolved against the current working directory.
"""

# --- Paths -------------------------------------------------------------------------------
CLIPS_DIR = "datasets/behavior_clips"  # <class>/*.mp4 or <group>/<class>/*.mp4
FRAMES_DIR = "datasets/frames"  # stage 1 output: per-person crops
SEQUENCES_FILE = "datasets/sequences/sequences.csv"  # stage 2 output
FEATURES_DIR = "datasets/features"  # stage 3 cache of per-crop CNN features
MODEL_DIR = "models/lstm_mn"  # stage 3 output: checkpoints and reports
ANNOTATIONS_DIR = ""  # your annotation files, used by stage 1 instead of its detector, tracker and pose model:
                      # <video>.json (PoseTrack/COCO: tracks, keypoints, objects) or <video>.txt (MOTChallenge gt),
                      # and labels.csv (video,track_id,label[,start_frame,end_frame]): docs/USAGE.md

# --- Weights (resolved by behavior.io.weights: explicit path, $BEHAVIOR_WEIGHTS_DIR, models/, download)
YOLO_WEIGHTS = "yolov8n.pt"  # person detector: a file name (searched) or a path
BACKBONE_WEIGHTS = "mobilenet_v2_imagenet.pth"  # ImageNet MobileNetV2 state_dict: a file name or a path
POSE_WEIGHTS = "yolov8n-pose.pt"  # keypoint model (YOLOv8-pose), used when INPUTS has pose, interaction, reach(ed)
I3D_WEIGHTS = "i3d_kinetics400_rgb.npz"  # DeepMind's Kinetics-400 I3D, used when INPUTS has scene_video
                                         # (`make i3d-weights` makes it on a connected machine)

# --- Stage 1: detection, tracking and crops ------------------------------------------------
TARGET_FPS = 15.0  # frames kept per second of video (resampled by timestamp; never upsampled; 0 = all)
FRAME_WIDTH = 224  # crop width fed to the CNN
FRAME_HEIGHT = 224  # crop height
CROP_MARGIN = 0.15  # context added on each side of a person box, as a fraction of its longer side
ENABLE_PERSON_TRACKING = True  # False: the whole letterboxed frame is one "person"
MAX_PERSONS_PER_VIDEO = 5  # keep the tracks with the most frames
YOLO_CONF_THRESHOLD = 0.25  # minimum person detection confidence
YOLO_IMGSZ = 640  # detector input size
DEVICE = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
TORCH_THREADS = 0  # CPU threads for torch; 0 = all cores
INFERENCE_BACKEND = "auto"  # where the detector, the pose model and MobileNetV2 run: "auto" (OpenVINO on the CPU,
                            # measured fastest; torch on a GPU), "torch", "openvino" or "onnxruntime". Exports are
                            # made once into models/exported/; results match torch's (tests/test_backends.py)
INFERENCE_PRECISION = "auto"  # how every network computes on the CPU: "auto" (bfloat16 where the CPU computes it
                              # natively, else float32; stage 1 2.2x the bare loop against 1.45x in float32, grouped
                              # accuracy within 1 point: docs/RESULTS.md), "float32" or "bfloat16"; recorded in the
                              # checkpoint and the caches, so prediction computes features as training did
DETECT_BATCH = 4  # frames the detector takes in one call, side by side on the cores, one batch ahead of the
                  # tracker (stage 1 and predict.py; the tracks stay the same; a live stream's labels come this
                  # many frames later)

# --- Stage 2: sequences ---------------------------------------------------------------------
SEQUENCE_LENGTH = 16  # frames per training sequence
SEQUENCE_STRIDE = 4  # frames between the starts of consecutive windows (as PREDICT_STRIDE; 4 beat 8 on UT: RESULTS.md)
MIN_SEQUENCE_FRAMES = 8  # shorter segments are dropped; shorter windows are padded
PAD_MODE = "reverse"  # windows shorter than SEQUENCE_LENGTH: "reverse" (played forwards, then backwards) or "drop"
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)  # train, val, test, by video (by recording group with one of the next two)
GROUPS_FILE = ""  # CSV video,group: the recording (camera, scene, people) of each video; a group never spans splits
GROUP_PATTERN = ""  # or a regex whose first capture group, searched in each video's name, is its group
SEED = 42  # fixes the splits, the initial weights and the batch order

# --- Stage 3: model and training ------------------------------------------------------------
LSTM_HIDDEN_DIM = 32  # LSTM units per direction (small on purpose: with tens of training clips a class, a larger
                      # LSTM memorizes them; measured on grouped CV: docs/RESULTS.md)
LSTM_NUM_LAYERS = 1  # stacked LSTM layers
LSTM_DROPOUT = 0.3  # dropout on the CNN features and between LSTM layers
STREAM_NORM = True  # batch-normalize each vector stream (motion, pose, ...) before its embedding (their
                    # scales differ: positions ~0.5 body heights, velocities up to 10 a second; measured: RESULTS)
ENSEMBLE_SIZE = 5  # sequence classifiers trained side by side from different initial weights; prediction averages
                   # their log-probabilities (steadier than one on small datasets; each costs one more LSTM pass,
                   # not one more CNN pass; measured: docs/RESULTS.md)
INPUTS = ("motion", "pose", "interaction", "reach", "reached")  # what the network reads per frame, any of:
    # "motion" (box velocity), "pose" (keypoints and their velocities), "interaction" (the nearest other person),
    # "reach" (limbs closing on the nearest person's body), "reached" (the closest each limb has come to someone's
    # body so far in the track, and the furthest out), "appearance" (MobileNetV2 features of the crop, CNN_INPUT),
    # "scene_video" (Kinetics-400 I3D features of the whole frame's last 16 images, once a clip for
    # everyone, from the scene images stage 1 saves for it; recommended for surveillance fights: docs/RESULTS.md),
    # "objects" (the OBJECT_CLASSES objects nearest the person: class, position, held in a hand or not).
    # Whole-frame mode reads ("appearance", "motion")
OBJECT_CLASSES = ("backpack", "handbag", "suitcase", "umbrella", "bottle", "cup", "knife", "scissors", "cell phone",
                  "laptop", "book", "baseball bat", "chair", "bench")  # the detector's (COCO) classes INPUTS
    # "objects" reads: stage 1 saves them per frame (objects.csv) and predict.py keeps them from the same detector
    # call; the model records them
MIL_POOLING = "auto"  # how clip labels teach per-person labels (behavior/data/mil.py): "none" = every sequence of a
                     # clip is trained with the clip's label; "max" = the clip is a bag of its people, the most
                     # telling of whom does the labeled behavior (BATCH_SIZE then counts whole
                     # clips' sequences); "roles" = each person labeled from the clip's geometry (its main people
                     # carry the clip's label, people seen far less are BACKGROUND_CLASS; see ACTOR_CLASSES) and
                     # trained per sequence; "auto" = "roles" with ACTOR_CLASSES, else "max" with a
                     # BACKGROUND_CLASS, else "none" (measured: docs/RESULTS.md); predict.py's video label pools its
                     # tracks the same way
BACKGROUND_CLASS = ""  # the class that means "nothing of interest" ("noFight", "normal"): with MIL_POOLING, a clip
                       # is of that class only when everyone in it is, so bystanders may be labeled with it
ACTOR_CLASSES: tuple[str, ...] = ()  # classes one person does to another ("kick", "punch", "push"; needs a
                                     # BACKGROUND_CLASS, which may then have no folder): training labels each
                                     # person from the clip's geometry (MIL_POOLING "roles"): the clip's main
                                     # people carry its label, people seen far less are background, and in these
                                     # classes only the one whose wrists and ankles reach out towards another
                                     # acts, and the one it is done to gets "<class>_received" (a class of the
                                     # model). The video label counts a received kick as a kick (VIDEO_LABEL_RULE)
VIDEO_SIZE = 224  # I3D's input size in pixels (crops and scene images are resized to it; smaller is faster)
CNN_INPUT = "difference"  # what MobileNetV2 sees per frame ("appearance"): "difference" (the crop minus the same
                          # person's previous crop, amplified: motion instead of looks; it beat "rgb" by grouped CV,
                          # docs/RESULTS.md) or "rgb" (the crop itself; needed to fine-tune)
FINE_TUNE_BLOCKS = 0  # 0: MobileNetV2 frozen, its features cached; N > 0: train its last N blocks (19 = all;
                      # batch norms stay in eval mode; needs CNN_INPUT "rgb")
BATCH_SIZE = 16  # sequences per training step
LEARNING_RATE = 1e-3  # initial learning rate
NUM_EPOCHS = 50  # at most this many passes over the training sequences
EARLY_STOPPING_PATIENCE = 10  # epochs without a better validation macro-F1
FOCAL_GAMMA = 0.0  # > 0: focal loss (examples already right count less), on top of the class weights; 2 is
                   # recommended where a class is several times rarer than another (surv_fight with a third of its
                   # fights: macro-F1 0.531 against 0.466 over three seeds; docs/RESULTS.md)

# --- Stage 4: prediction ----------------------------------------------------------------------
PREDICT_STRIDE = 4  # classify every N kept frames (all ready tracks in one batch)
SMOOTHING = 0.5  # EMA weight of the newest probabilities per track (1 = no smoothing)
VIDEO_LABEL_RULE = "auto"  # how the tracks make the video's label: "auto" = as the model was trained (its
                           # MIL_POOLING; "mean" for "none", "mean_min" for "roles"); "mean" (everyone, by
                           # labeled frames), "max" (the most telling track), "mean_min" (the mean; background
                           # only when every track is)

"""The data layer shared by training, evaluation and benchmarks: MNIST digits, the scene
generator with its ground truth, camera-realistic surfaces, COCO folders of real images and
synthetic video. numpy and OpenCV only; a board running detections never imports it."""

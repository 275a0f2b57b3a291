"""A file without TODO blocks."""

from geom.area import rect_area

if __name__ == "__main__":
    print(rect_area(2, 3))
